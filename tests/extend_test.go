package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kernelModulesDir returns the module tree of the kernel package the
// images were built from, in the package cache's unpacked trees.
func kernelModulesDir(t *testing.T, e *env, kver string) string {
	t.Helper()
	for _, pat := range []string{"trees/*/tree/lib/modules/" + kver + "/kernel", "trees/*/tree/usr/lib/modules/" + kver + "/kernel"} {
		if m, _ := filepath.Glob(filepath.Join(e.cacheDir, pat)); len(m) > 0 {
			return filepath.Dir(m[0])
		}
	}
	t.Fatalf("no module tree of kernel %s in the cache %s", kver, e.cacheDir)
	return ""
}

// TestBootExtended extends the prebuilt generic image on the host with
// `pkginitrd extend`: a LUKS keyfile it lacks, the command-line word naming
// the keyfile, and a module the generic set lacks (snd_dummy, whose sound
// core dependencies it lacks too). The base's bytes must be an exact prefix
// of the result, and the result must boot the LUKS root without asking for
// the passphrase and load the module.
func TestBootExtended(t *testing.T) {
	e := setup(t)
	kernel, base := buildImage(t, e, "--generic")
	kver := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	host := t.TempDir()
	keyFile := filepath.Join(host, "root.key")
	writeFile(t, keyFile, []byte(luksPassphrase), 0o600)
	extended := filepath.Join(host, "host.img")
	out := pkginitrd(t, e, "extend", "--base", base, "-o", extended, "--include", keyFile+":/etc/keys/root.key",
		"--cmdline", "rd.luks.key=/etc/keys/root.key", "--module", "snd-dummy", "--modules-dir", kernelModulesDir(t, e, kver))
	t.Logf("pkginitrd extend: %s", strings.TrimSpace(out))

	baseBytes, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	extBytes, err := os.ReadFile(extended)
	if err != nil {
		t.Fatal(err)
	}
	if len(extBytes) <= len(baseBytes) || !bytes.Equal(extBytes[:len(baseBytes)], baseBytes) {
		t.Fatalf("extended image (%d bytes) does not start with the base image's %d bytes", len(extBytes), len(baseBytes))
	}
	sum := sha256.Sum256(extBytes[:len(baseBytes)])
	if want := sha256.Sum256(baseBytes); sum != want || !strings.Contains(out, "sha256 "+hex.EncodeToString(want[:])) {
		t.Errorf("base prefix sha256 %x, base %x; extend printed %q", sum, want, out)
	}
	t.Logf("base %d bytes, addition %d bytes", len(baseBytes), len(extBytes)-len(baseBytes))

	disks := makeDMDisksFrom(t, e, dmCheckRoot(t))
	start := time.Now()
	// No typing: bootDM fails if stage0 asks for the passphrase, which it
	// does without the keyfile and the extension's rd.luks.key=.
	bootDM(t, kernel, dmCase{name: "extended", disks: []string{disks.luks}, initrd: extended,
		cmdline: "root=UUID=" + rootUUID, wantLog: `loaded module module=snd_dummy `, wantDM: `^luks-` + luksUUID + ` ro=0 `})
	t.Logf("boot to the root's report took %s (TCG)", time.Since(start).Round(time.Second))
}
