package exepages

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Release drops this process's resident read-only pages of its own
// executable. A mapping is left alone unless it is a private read-only
// (r--p, r-xp) mapping of the executable holding no anonymous (written,
// copied-on-write) page, such as a dynamic binary's relocated data: only
// pages that are exact copies of the file are given back.
func Release() (Stats, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return Stats{}, fmt.Errorf("finding this executable: %w", err)
	}
	maps, err := readMappings(exe)
	if err != nil {
		return Stats{}, err
	}
	var st Stats
	for _, m := range maps {
		if !m.releasable() {
			continue
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, syscall.MADV_DONTNEED); errno != 0 {
			return st, fmt.Errorf("releasing %x-%x of %s: %w", m.start, m.end, exe, errno)
		}
		st.Mappings++
		st.Bytes += m.rssKiB << 10
	}
	return st, nil
}

type mapping struct {
	start, end   uintptr
	perms        string
	rssKiB, anon int64
}

func (m mapping) releasable() bool {
	return len(m.perms) == 4 && m.perms[0] == 'r' && m.perms[1] == '-' && m.perms[3] == 'p' && m.anon == 0 && m.rssKiB > 0
}

// readMappings reads /proc/self/smaps for the mappings of path.
func readMappings(path string) ([]mapping, error) {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil, fmt.Errorf("reading this process's mappings: %w", err)
	}
	var out []mapping
	var cur *mapping
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(f[0], "-"); ok && len(f) >= 5 {
			cur = nil
			if len(f) < 6 || f[5] != path {
				continue
			}
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("unreadable mapping %q in /proc/self/smaps", sc.Text())
			}
			out = append(out, mapping{start: uintptr(start), end: uintptr(end), perms: f[1]})
			cur = &out[len(out)-1]
			continue
		}
		if cur == nil || len(f) < 2 {
			continue
		}
		switch f[0] {
		case "Rss:":
			cur.rssKiB, _ = strconv.ParseInt(f[1], 10, 64)
		case "Anonymous:":
			cur.anon, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return out, sc.Err()
}
