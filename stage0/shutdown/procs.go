package shutdown

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pkginitrd/pkginitrd/stage0/machine"
)

// pfKthread is PF_KTHREAD in the flags of /proc/PID/stat (linux/sched.h).
const pfKthread = 0x00200000

// Process is a process as /proc shows it.
type Process = machine.Process

// ParseStat reads the fields of /proc/PID/stat that Process holds.
// The command name is in parentheses and may itself contain spaces and
// parentheses, so the fields are counted from the last ')'.
func ParseStat(b []byte) (Process, error) {
	s := string(bytes.TrimSpace(b))
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return Process{}, fmt.Errorf("stat %q: no (comm)", s)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return Process{}, fmt.Errorf("stat %q: bad pid", s)
	}
	// state ppid pgrp session tty_nr tpgid flags ...
	f := strings.Fields(s[end+1:])
	if len(f) < 7 || len(f[0]) != 1 {
		return Process{}, fmt.Errorf("stat %q: too few fields", s)
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	if err != nil {
		return Process{}, fmt.Errorf("stat %q: bad flags", s)
	}
	return Process{PID: pid, Comm: s[open+1 : end], State: f[0][0], Kernel: flags&pfKthread != 0}, nil
}

// ReadProcesses lists the processes in procRoot (normally /proc).
// Processes that end while being read are skipped.
func ReadProcesses(procRoot string) ([]Process, error) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []Process
	var errs []error
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		p, err := ParseStat(b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if argv, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "cmdline")); err == nil && len(argv) > 0 && argv[0] == '@' {
			p.Storage = true
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

// ToKill returns the processes the killing spree signals: everything but
// self, kernel threads, zombies (already dead; PID 1 reaps them) and root
// storage daemons.
func ToKill(procs []Process, self int) []Process {
	var out []Process
	for _, p := range procs {
		if p.PID == self || p.Kernel || p.State == 'Z' || p.State == 'X' || p.Storage {
			continue
		}
		out = append(out, p)
	}
	return out
}
