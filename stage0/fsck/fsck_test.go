package fsck

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

func TestInterpret(t *testing.T) {
	for code, want := range map[int]Outcome{0: OK, 1: OK, 2: Reboot, 3: Reboot, 4: Failed, 5: Failed, 8: Failed, 12: Failed, 16: Failed, 32: Failed, 128: Failed} {
		if got := Interpret(code); got != want {
			t.Errorf("Interpret(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestArgs(t *testing.T) {
	for _, tc := range []struct {
		mode, repair string
		want         []string
	}{
		{"", "", []string{"/usr/sbin/fsck.ext4", "-a", "/dev/vda2"}},
		{"auto", "preen", []string{"/usr/sbin/fsck.ext4", "-a", "/dev/vda2"}},
		{"force", "", []string{"/usr/sbin/fsck.ext4", "-a", "-f", "/dev/vda2"}},
		{"", "yes", []string{"/usr/sbin/fsck.ext4", "-y", "/dev/vda2"}},
		{"force", "no", []string{"/usr/sbin/fsck.ext4", "-n", "-f", "/dev/vda2"}},
		{"skip", "yes", nil},
	} {
		if got := Args("/usr/sbin/fsck.ext4", "/dev/vda2", tc.mode, tc.repair); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Args(mode %q, repair %q) = %q, want %q", tc.mode, tc.repair, got, tc.want)
		}
	}
}

// TestRunRealExt4 checks a clean and a damaged real ext4 image with the
// real e2fsck.
func TestRunRealExt4(t *testing.T) {
	checker := testenv.NeedTool(t, "fsck.ext4", "e2fsprogs")
	img := filepath.Join(t.TempDir(), "ext4.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 32<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(filepath.Dir(checker), "mkfs.ext4"), "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	var out bytes.Buffer
	if o, err := Run(context.Background(), Args(checker, img, "force", ""), &out); o != OK || err != nil {
		t.Errorf("Run(clean ext4) = %v, %v; want ok\n%s", o, err, out.String())
	}
	// Zero the primary superblock: preen mode must refuse (exit 8, or 4).
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 1024), 1024); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out.Reset()
	o, err := Run(context.Background(), Args(checker, img, "", ""), &out)
	var exit *exec.ExitError
	if o != Failed || !errors.As(err, &exit) {
		t.Errorf("Run(damaged ext4) = %v, %v; want failed with an *exec.ExitError\n%s", o, err, out.String())
	}
	if o, err := Run(context.Background(), []string{"/nonexistent/fsck.x", "/dev/null"}, &out); o != Failed || err == nil {
		t.Errorf("Run(missing checker) = %v, %v; want failed", o, err)
	}
}
