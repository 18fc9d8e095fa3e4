package dm

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

// openPTY returns a pseudo-terminal's master and its slave's path.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	return m, fmt.Sprintf("/dev/pts/%d", n)
}

// TestAskNoEcho types a passphrase into a pty: it must come back without
// the newline, never be echoed, and the terminal's echo must be on again.
func TestAskNoEcho(t *testing.T) {
	m, slave := openPTY(t)
	s, err := os.OpenFile(slave, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if before.Lflag&unix.ECHO == 0 {
		t.Fatal("a new pty has echo off; the test cannot tell")
	}
	type res struct {
		b   []byte
		err error
	}
	done := make(chan res, 1)
	go func() {
		b, err := askNoEcho(slave, "Passphrase for X: ")
		done <- res{b, err}
	}()
	// Read the prompt first: once it is there, echo is off.
	var seen strings.Builder
	buf := make([]byte, 256)
	for !strings.Contains(seen.String(), "Passphrase for X: ") {
		n, err := m.Read(buf)
		if err != nil {
			t.Fatalf("read the prompt: %v (got %q)", err, seen.String())
		}
		seen.Write(buf[:n])
	}
	m.Write([]byte("s3cret pass\n"))
	var r res
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("askNoEcho did not return")
	}
	if r.err != nil || string(r.b) != "s3cret pass" {
		t.Errorf("askNoEcho = %q, %v; want %q", r.b, r.err, "s3cret pass")
	}
	// askNoEcho ended with a newline of its own: whatever the terminal
	// echoed came before it and is buffered now.
	n, err := m.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	seen.Write(buf[:n])
	if strings.Contains(seen.String(), "s3cret") {
		t.Errorf("the terminal echoed the passphrase: %q", seen.String())
	}
	after, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if after.Lflag != before.Lflag {
		t.Errorf("terminal lflag after = %#x, want it restored to %#x", after.Lflag, before.Lflag)
	}
}

// TestReadDeviceFile mounts a tmpfs as the "key device": the missing file
// is an error naming it, and nothing stays mounted or created afterwards.
func TestReadDeviceFile(t *testing.T) {
	testenv.NeedRoot(t, "mounting a tmpfs")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	_, err := readDeviceFile(context.Background(), "keytest", "tmpfs", "/keys/root.key")
	if err == nil || !strings.Contains(err.Error(), "read /keys/root.key on the key device keytest") {
		t.Errorf("readDeviceFile on an empty tmpfs = %v, want an error naming the file and the device", err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("readDeviceFile left %v in %s", ents, tmp)
	}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), tmp) {
		t.Errorf("readDeviceFile left a mount under %s:\n%s", tmp, mounts)
	}
	if _, err := readDeviceFile(context.Background(), "keytest", "no-such-fs", "/k"); err == nil || !strings.Contains(err.Error(), "mount the key device keytest (no-such-fs) read-only") {
		t.Errorf("readDeviceFile with a bad type = %v, want a mount error naming the device", err)
	}
}
