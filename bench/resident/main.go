// Command resident shows how much of a process's executable is resident,
// by ELF section: which parts of the binary (code, the Go function table,
// read-only data) its RSS holds. Reads /proc/PID/maps and /proc/PID/pagemap
// (root). Usage: go run ./bench/resident PID
package main

import (
	"bufio"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

const page = 4096

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/resident PID")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "resident:", err)
		os.Exit(1)
	}
}

func run(pid string) error {
	exe, err := os.Readlink("/proc/" + pid + "/exe")
	if err != nil {
		return err
	}
	f, err := elf.Open(exe)
	if err != nil {
		return err
	}
	defer f.Close()
	pm, err := os.Open("/proc/" + pid + "/pagemap")
	if err != nil {
		return err
	}
	defer pm.Close()
	maps, err := os.Open("/proc/" + pid + "/maps")
	if err != nil {
		return err
	}
	defer maps.Close()
	kib := map[string]int{}
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe {
			continue
		}
		lo, hi, _ := strings.Cut(fields[0], "-")
		start, _ := strconv.ParseUint(lo, 16, 64)
		end, _ := strconv.ParseUint(hi, 16, 64)
		buf := make([]byte, (end-start)/page*8)
		if _, err := pm.ReadAt(buf, int64(start/page*8)); err != nil {
			return fmt.Errorf("reading pagemap (needs root): %w", err)
		}
		for i := range len(buf) / 8 {
			if binary.LittleEndian.Uint64(buf[i*8:])>>63 == 0 {
				continue // not present
			}
			kib[section(f, start+uint64(i)*page)] += page / 1024
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	names := make([]string, 0, len(kib))
	total := 0
	for n, k := range kib {
		names = append(names, n)
		total += k
	}
	sort.Slice(names, func(i, j int) bool { return kib[names[i]] > kib[names[j]] })
	fmt.Printf("%s (pid %s): %d KiB of the executable resident\n", exe, pid, total)
	for _, n := range names {
		fmt.Printf("  %-16s %7d KiB\n", n, kib[n])
	}
	return nil
}

// section names the allocated section holding addr's page (the first
// one the page overlaps).
func section(f *elf.File, addr uint64) string {
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC != 0 && s.Addr < addr+page && addr < s.Addr+s.Size {
			return s.Name
		}
	}
	return "(headers)"
}
