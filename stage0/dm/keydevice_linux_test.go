package dm

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

// TestReadDeviceFile mounts a tmpfs as the "key device": the missing file
// is an error naming it, and nothing stays mounted or created afterwards.
func TestReadDeviceFile(t *testing.T) {
	testenv.NeedRoot(t, "mounting a tmpfs")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	_, err := ReadDeviceFile(context.Background(), "keytest", "tmpfs", "/keys/root.key")
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
	if _, err := ReadDeviceFile(context.Background(), "keytest", "no-such-fs", "/k"); err == nil || !strings.Contains(err.Error(), "mount the key device keytest (no-such-fs) read-only") {
		t.Errorf("readDeviceFile with a bad type = %v, want a mount error naming the device", err)
	}
}
