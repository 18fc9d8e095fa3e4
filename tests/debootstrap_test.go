package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

// debMirror is where the Debian roots of the tests are debootstrapped and
// installed from.
const debMirror = "http://deb.debian.org/debian"

// debootstrapRoot returns a Debian bookworm root made by debootstrap
// (minbase plus the packages in include), without apt's downloaded
// archives and lists. It is made once per set of debootstrap arguments and
// kept in the test cache's fixtures directory: callers copy it before
// changing it.
func debootstrapRoot(t *testing.T, e *env, include ...string) string {
	t.Helper()
	testenv.NeedRoot(t, "debootstrap (file owners in the root)")
	testenv.NeedTool(t, "debootstrap", "debootstrap")
	args := []string{"--variant=minbase"}
	if len(include) > 0 {
		args = append(args, "--include="+strings.Join(include, ","))
	}
	args = append(args, "bookworm")
	h := sha256.Sum256([]byte("debootstrap v1\n" + strings.Join(args, " ")))
	dir := filepath.Join(fixtureCacheDir(e), "debootstrap-"+hex.EncodeToString(h[:])[:16])
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		now := time.Now()
		os.Chtimes(filepath.Join(dir, "done"), now, now)
		return filepath.Join(dir, "root")
	}
	testenv.NeedNetwork(t, debMirror)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-debootstrap-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	root := filepath.Join(tmp, "root")
	if out, err := exec.Command("debootstrap", append(args, root, debMirror)...).CombinedOutput(); err != nil {
		t.Fatalf("debootstrap %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 30))
	}
	for _, junk := range []string{"var/cache/apt/archives", "var/lib/apt/lists"} {
		m, _ := filepath.Glob(filepath.Join(root, junk, "*"))
		for _, p := range m {
			os.RemoveAll(p)
		}
	}
	writeFile(t, filepath.Join(tmp, "done"), []byte(strings.Join(args, " ")), 0o644)
	os.Chmod(tmp, 0o755)
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "done")); serr != nil {
			t.Fatalf("store the debootstrap root in %s: %v", dir, err)
		}
	}
	pruneFixtures(t, filepath.Dir(dir), "debootstrap-", 30*24*time.Hour)
	t.Logf("debootstrap %s took %s, stored in %s", strings.Join(args, " "), time.Since(start).Round(time.Second), dir)
	return filepath.Join(dir, "root")
}
