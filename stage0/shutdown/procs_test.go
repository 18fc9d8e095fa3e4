package shutdown

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Process
	}{
		{"26623 (cat) R 26619 26619 12095 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 979394\n", Process{PID: 26623, Comm: "cat", State: 'R'}},
		{"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 1 0 0 20 0 1 0 24 0 0\n", Process{PID: 2, Comm: "kthreadd", State: 'S', Kernel: true}},
		{"77 (a) b (c)) Z 1 77 77 0 -1 4227084 0 0\n", Process{PID: 77, Comm: "a) b (c)", State: 'Z'}},
	} {
		got, err := ParseStat([]byte(tc.in))
		if err != nil || got != tc.want {
			t.Errorf("ParseStat(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "12 cat R 1", "x (cat) R 1 1 1 0 -1 0", "12 (cat) R 1", "12 (cat) R 1 1 1 0 -1 flags"} {
		if got, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("ParseStat(%q) = %+v, want an error", bad, got)
		}
	}
}

// TestReadProcessesHost reads this machine's /proc: the test process is
// there as a user process, kthreadd (PID 2) as a kernel thread.
func TestReadProcessesHost(t *testing.T) {
	procs, err := ReadProcesses("/proc")
	if err != nil {
		t.Fatalf("ReadProcesses(/proc) = %v", err)
	}
	byPID := map[int]Process{}
	for _, p := range procs {
		byPID[p.PID] = p
	}
	if me, ok := byPID[os.Getpid()]; !ok || me.Kernel || me.State == 'Z' {
		t.Errorf("ReadProcesses(/proc): this process = %+v, %v; want a live user process", me, ok)
	}
	if kt, ok := byPID[2]; ok && !kt.Kernel {
		t.Errorf("ReadProcesses(/proc): PID 2 (%s) not seen as a kernel thread", kt.Comm)
	}
}

func TestReadProcessesStorageDaemon(t *testing.T) {
	root := t.TempDir()
	write := func(pid, stat, cmdline string) {
		if err := os.MkdirAll(filepath.Join(root, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(root, pid, "stat"), []byte(stat), 0o644)
		os.WriteFile(filepath.Join(root, pid, "cmdline"), []byte(cmdline), 0o644)
	}
	write("1", "1 (shutdown) R 0 1 1 0 -1 4194560 0 0", "/shutdown\x00poweroff\x00")
	write("300", "300 (mdmon) S 1 300 300 0 -1 4194560 0 0", "@mdmon\x00md127\x00")
	write("301", "301 (sleep) S 1 301 301 0 -1 4194560 0 0", "sleep\x00999\x00")
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	procs, err := ReadProcesses(root)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]bool{}
	for _, p := range procs {
		got[p.PID] = p.Storage
	}
	if want := map[int]bool{1: false, 300: true, 301: false}; !reflect.DeepEqual(got, want) {
		t.Errorf("ReadProcesses: PID → storage daemon = %v, want %v", got, want)
	}
}

func TestToKill(t *testing.T) {
	procs := []Process{
		{PID: 1, Comm: "shutdown", State: 'R'},
		{PID: 2, Comm: "kthreadd", State: 'S', Kernel: true},
		{PID: 120, Comm: "sleep", State: 'S'},
		{PID: 121, Comm: "gone", State: 'Z'},
		{PID: 122, Comm: "mdmon", State: 'S', Storage: true},
		{PID: 123, Comm: "stopped", State: 'T'},
	}
	var got []int
	for _, p := range ToKill(procs, 1) {
		got = append(got, p.PID)
	}
	if want := []int{120, 123}; !reflect.DeepEqual(got, want) {
		t.Errorf("ToKill = %v, want %v", got, want)
	}
}
