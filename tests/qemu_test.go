package tests

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// vm is a qemu guest whose serial console is read line by line.
type vm struct {
	t       *testing.T
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	mu      sync.Mutex
	lines   []string
	pos     int // lines before pos were consumed by earlier expects
	notify  chan struct{}
	done    chan struct{}
	started time.Time
	logPath string
}

type vmConfig struct {
	kernel, initrd string // "": boot through the firmware instead
	cmdline        string
	disks          []string // raw images attached as virtio disks
	extraArgs      []string // more qemu arguments (other disk buses, cdrom, ...)
	memMiB         int
}

// bootVM starts qemu (TCG) and returns at once; use expect to wait for output.
func bootVM(t *testing.T, c vmConfig) *vm {
	t.Helper()
	if c.memMiB == 0 {
		c.memMiB = 1024
	}
	args := []string{
		"-accel", "tcg", "-smp", "2", "-m", fmt.Sprint(c.memMiB),
		"-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot",
	}
	if c.kernel != "" { // else the firmware boots from the disks (extraArgs)
		args = append(args, "-kernel", c.kernel, "-initrd", c.initrd, "-append", "console=ttyS0 panic=-1 "+c.cmdline)
	}
	for _, d := range c.disks {
		args = append(args, "-drive", "file="+d+",if=virtio,format=raw")
	}
	args = append(args, c.extraArgs...)
	cmd := exec.Command("qemu-system-x86_64", args...)
	lock := qemuLock(t)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	logPath := filepath.Join(t.TempDir(), "console.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	v := &vm{t: t, cmd: cmd, stdin: stdin, notify: make(chan struct{}, 1), done: make(chan struct{}), started: time.Now(), logPath: logPath}
	if err := cmd.Start(); err != nil {
		lock.Close()
		t.Fatalf("start qemu: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			fmt.Fprintln(logf, line)
			v.mu.Lock()
			v.lines = append(v.lines, line)
			v.mu.Unlock()
			select {
			case v.notify <- struct{}{}:
			default:
			}
		}
	}()
	go func() {
		cmd.Wait()
		lock.Close()
		pw.Close()
		logf.Close()
		close(v.done)
	}()
	t.Cleanup(func() {
		v.kill()
		if t.Failed() {
			t.Logf("console output (last 60 lines):\n%s", v.tail(60))
		}
	})
	return v
}

// qemuLock waits for the machine-wide qemu lock, so that test processes
// running at the same time (two packages, two developers) boot one guest
// at a time on this small machine; closing the file releases it.
func qemuLock(t *testing.T) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "pkginitrd-qemu.lock"), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatalf("qemu lock: %v", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("qemu lock %s: %v", f.Name(), err)
	}
	return f
}

func (v *vm) kill() {
	if v.cmd.Process != nil {
		v.cmd.Process.Kill()
	}
	<-v.done
}

func (v *vm) tail(n int) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	l := v.lines
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// expect waits until a console line matches re and returns its submatches.
// It fails the test on timeout or when qemu exits first.
func (v *vm) expect(re string, timeout time.Duration) []string {
	v.t.Helper()
	m, err := v.wait(regexp.MustCompile(re), timeout)
	if err != nil {
		v.t.Fatalf("waiting for %q: %v", re, err)
	}
	return m
}

func (v *vm) wait(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	deadline := time.After(timeout)
	for {
		v.mu.Lock()
		lines := v.lines[v.pos:]
		start := v.pos
		v.pos = len(v.lines)
		next := v.pos
		v.mu.Unlock()
		for i, l := range lines {
			if m := re.FindStringSubmatch(l); m != nil {
				v.mu.Lock()
				v.pos = start + i + 1
				v.mu.Unlock()
				return m, nil
			}
		}
		select {
		case <-v.notify:
		case <-v.done:
			v.mu.Lock()
			more := len(v.lines) > next
			v.mu.Unlock()
			if !more {
				return nil, fmt.Errorf("qemu exited after %s", time.Since(v.started).Round(time.Millisecond))
			}
		case <-deadline:
			return nil, fmt.Errorf("timed out after %s", timeout)
		}
	}
}

// send types s on the serial console.
func (v *vm) send(s string) {
	v.t.Helper()
	if _, err := io.WriteString(v.stdin, s); err != nil {
		v.t.Fatalf("write to console: %v", err)
	}
}

// waitExit waits for qemu to end (the root's init powers off).
func (v *vm) waitExit(timeout time.Duration) {
	v.t.Helper()
	select {
	case <-v.done:
	case <-time.After(timeout):
		v.t.Fatalf("qemu still running after %s", timeout)
	}
}
