package console

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestTTY(t *testing.T) {
	for _, tc := range []struct {
		name         string
		active, tty0 string
		nodes        []string
		want         string
	}{
		{"serial last", "tty0 ttyS0\n", "tty1\n", []string{"ttyS0", "tty1"}, "ttyS0"},
		{"vt", "ttyS0 tty0\n", "tty2\n", []string{"ttyS0", "tty2"}, "tty2"},
		{"tty0 without active", "tty0\n", "", []string{"tty0"}, "tty0"},
		{"no node", "hvc0\n", "", nil, "console"},
		{"empty", "\n", "", nil, "console"},
		{"no sysfs", "", "", nil, "console"},
	} {
		sys, dev := t.TempDir(), t.TempDir()
		if tc.active != "" {
			write(t, filepath.Join(sys, "class/tty/console/active"), tc.active)
		}
		if tc.tty0 != "" {
			write(t, filepath.Join(sys, "class/tty/tty0/active"), tc.tty0)
		}
		for _, n := range tc.nodes {
			write(t, filepath.Join(dev, n), "")
		}
		if got := TTY(sys, dev); got != filepath.Join(dev, tc.want) {
			t.Errorf("%s: TTY = %s, want %s", tc.name, got, filepath.Join(dev, tc.want))
		}
	}
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestShellEnv(t *testing.T) {
	got := ShellEnv([]string{"HOME=/root", "TERM=vt102", "PATH=/x", "BOOT_IMAGE=/vmlinuz", "PS1=$ "})
	want := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "PS1=pkginitrd# ", "HOME=/", "TERM=vt102", "BOOT_IMAGE=/vmlinuz"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ShellEnv = %q, want %q", got, want)
	}
}

func TestCommand(t *testing.T) {
	if _, _, err := Command(context.Background(), "/nonexistent/tty", []string{"/bin/sh"}, nil); err == nil {
		t.Errorf("Command(missing tty) = nil error")
	}
	if _, _, err := Command(context.Background(), os.DevNull, nil, nil); err == nil {
		t.Errorf("Command(no argv) = nil error")
	}
	cmd, f, err := Command(context.Background(), os.DevNull, []string{"/bin/sh", "-c", "exit 3"}, []string{"A=1"})
	if err != nil {
		t.Fatalf("Command = %v", err)
	}
	defer f.Close()
	// /dev/null is no terminal, so TIOCSCTTY must fail: proof that it is
	// requested.
	if err := cmd.Run(); err == nil {
		t.Errorf("running with /dev/null as controlling tty succeeded; want TIOCSCTTY to fail")
	}
	if !cmd.SysProcAttr.Setsid || !cmd.SysProcAttr.Setctty || cmd.SysProcAttr.Ctty != 0 {
		t.Errorf("SysProcAttr = %+v, want setsid and ctty on fd 0", cmd.SysProcAttr)
	}
}
