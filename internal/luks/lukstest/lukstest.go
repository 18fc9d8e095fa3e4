// Package lukstest makes LUKS images with the system's cryptsetup for
// tests of code that reads LUKS headers.
package lukstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

// Format formats a 20 MiB file with `cryptsetup luksFormat ARGS` (Debian
// package cryptsetup-bin), passphrase "passphrase", and returns its path.
func Format(t testing.TB, args ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "luks.img")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 20<<20); err != nil {
		t.Fatal(err)
	}
	argv := append([]string{"luksFormat", "--batch-mode", "--pbkdf-force-iterations", "1000", "--disable-locks", "--key-file=-"}, args...)
	argv = append(argv, p)
	cmd := exec.Command(testenv.NeedTool(t, "cryptsetup", "cryptsetup-bin"), argv...)
	cmd.Stdin = strings.NewReader("passphrase")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cryptsetup %s: %v\n%s(install the Debian package cryptsetup-bin)", strings.Join(argv, " "), err, out)
	}
	return p
}
