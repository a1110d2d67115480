package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxSeedFileBytes is the largest seed file: the API's body limit, which
// fits MaxSeeds seeds of MaxSeedLength.
const maxSeedFileBytes = MaxBodyBytes

// ReadSeedFile reads one seed per line (blank lines and # comments
// skipped) or a JSON list, within the API's limits, stated before the file
// is read: its size, each seed's length, their count; binary input is
// refused with its line number. Errors quote a short excerpt at most.
func ReadSeedFile(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if st.Size() > maxSeedFileBytes {
		return nil, fmt.Errorf("seed file %s is %d bytes, over the %d-byte limit (%d seeds of at most %d bytes): split it into several runs",
			file, st.Size(), maxSeedFileBytes, MaxSeeds, MaxSeedLength)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSeedFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSeedFileBytes {
		return nil, fmt.Errorf("seed file %s is over the %d-byte limit", file, maxSeedFileBytes)
	}
	var seeds []string
	var where []string // "line N" or "item N", for errors
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '[' {
		if err := json.Unmarshal(t, &seeds); err != nil {
			return nil, fmt.Errorf("seed file %s: not a JSON list of strings: %w", file, err)
		}
		for i := range seeds {
			where = append(where, fmt.Sprintf("item %d", i+1))
		}
	} else {
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 64<<10), maxSeedFileBytes)
		for n := 1; sc.Scan(); n++ {
			if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
				seeds, where = append(seeds, line), append(where, fmt.Sprintf("line %d", n))
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("seed file %s: %w", file, err)
		}
	}
	if len(seeds) > MaxSeeds {
		return nil, fmt.Errorf("seed file %s has %d seeds, over the limit of %d: split it into several runs", file, len(seeds), MaxSeeds)
	}
	if len(seeds) == 0 {
		return nil, errors.New("seed file " + file + " has no seed")
	}
	for i, s := range seeds {
		if err := CheckSeed(s); err != nil {
			return nil, fmt.Errorf("seed file %s, %s: %w", file, where[i], err)
		}
	}
	return seeds, nil
}
