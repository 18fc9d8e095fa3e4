package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testarch"
	"github.com/pkginitrd/pkginitrd/internal/testdeb"
)

// TestBootArchLVM builds a generic image through the pacman backend
// (--distribution arch, the shipped Arch defaults) from a signed local
// repository whose core and extra replace Arch's in the working
// directory's pkginitrd.toml, with the Debian kernel's modules, and boots a
// root on LVM with it: busybox, lvm and their libraries come from the
// Arch-layout packages the real pacman resolved.
func TestBootArchLVM(t *testing.T) {
	e := setup(t)
	for tool, pkg := range map[string]string{"pacman": "pacman-package-manager", "makepkg": "makepkg", "gpg": "gnupg", "fakeroot": "fakeroot", "bsdtar": "libarchive-tools"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the Arch end-to-end test needs %s (Debian package %s)", tool, pkg)
		}
	}
	f := testarch.NewFixture(t, t.TempDir(), testdeb.Deb)
	kroot, kver := testdeb.Kernel(t)
	work := t.TempDir()
	// The fixture repository has no e2fsprogs or cryptsetup: no fsck, and
	// no luks feature in the generic image. Its repositories replace the
	// shipped ones of the same names (core, extra).
	conf := "generic_features = [\"!luks\"]\n[distributions.arch]\npackages = [\"!e2fsprogs\"]\n"
	for _, n := range f.Names {
		conf += fmt.Sprintf("[distributions.arch.repositories.%s]\nurl = %q\nkeyring = %q\n", n, "file://"+f.Dir, f.Key.Public)
	}
	writeFile(t, filepath.Join(work, "pkginitrd.toml"), []byte(conf), 0o644)
	initrd, manifest := filepath.Join(work, "initrd.img"), filepath.Join(work, "manifest.json")
	args := []string{"build", "--distribution", "arch", "--generic", "--kernel-version", kver, "--modules-dir", testdeb.ModulesDir(t, kroot, kver),
		"--cache-dir", filepath.Join(work, "cache"), "--manifest", manifest, "-o", initrd}
	cmd := exec.Command(e.bin, args...)
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pkginitrd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var m struct {
		Packages []struct{ Name, Version, Repository, Backend string }
	}
	data, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range m.Packages {
		got = append(got, p.Name+" "+p.Version+" "+p.Repository+" "+p.Backend)
	}
	want := "busybox 1.35.0-1 extra pacman|device-mapper 2.03.16-1 core pacman|glibc 2.36-1 core pacman|lvm2 2.03.16-1 core pacman|lvm2-libs 2.03.16-1 core pacman"
	if strings.Join(got, "|") != want {
		t.Errorf("manifest packages:\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
	disks := makeDMDisksFrom(t, e, dmCheckRoot(t))
	v := bootVM(t, vmConfig{kernel: filepath.Join(kroot, "boot", "vmlinuz-"+kver), initrd: initrd, cmdline: "root=/dev/vg/root", extraArgs: discardDrives([]string{disks.lvm})})
	v.expect(`found root device root=/dev/vg/root .*DM=vg-root`, bootTimeout)
	got2 := expectRoot(t, v)
	if f := strings.Fields(got2["root"]); len(f) != 3 || !isDMSource(f[0]) || f[1] != "ext4" {
		t.Errorf("root mount = %q, want a device-mapper device, ext4", got2["root"])
	}
}
