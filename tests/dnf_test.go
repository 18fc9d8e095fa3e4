package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testdeb"
	"github.com/pkginitrd/pkginitrd/internal/testrpm"
)

// TestBootFedoraDNF builds an image through the dnf backend
// (--distribution fedora) from a local signed repository holding Debian's
// static busybox packaged the Fedora way (/usr/sbin/busybox), with the
// Debian kernel's generic modules, and boots a plain ext4 fixture root.
// Fedora's own mirrors are not reachable here: the repository replaces
// them through a TOML drop-in.
func TestBootFedoraDNF(t *testing.T) {
	e := setup(t)
	for tool, pkg := range map[string]string{"dnf": "dnf", "rpmbuild": "rpm", "createrepo_c": "createrepo-c", "gpg": "gnupg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the dnf boot test needs %s (Debian package %s)", tool, pkg)
		}
	}
	bb := filepath.Join(t.TempDir(), "busybox-static")
	run(t, "dpkg-deb", "-x", testdeb.Deb(t, "busybox-static"), bb)
	rpm := testrpm.Build(t, testrpm.Spec{Name: "busybox", Version: "1.36.1", Release: "1.fc41", Files: []testrpm.File{
		{Path: "/usr/sbin/busybox", Mode: 0o755, Src: filepath.Join(bb, "bin/busybox")}}})
	key := testrpm.NewKey(t, "e2e")
	key.Sign(t, rpm)
	repo := key.Repo(t, rpm)

	conf := filepath.Join(t.TempDir(), "fedora-local.toml")
	writeFile(t, conf, []byte(fmt.Sprintf(`# The local repository instead of Fedora's; no LUKS/LVM packages in it.
generic_features = ["!luks", "!lvm"]
[distributions.fedora]
keyring = %q
packages = ["!e2fsprogs"]
[distributions.fedora.repositories.fedora]
disabled = true
[distributions.fedora.repositories.updates]
disabled = true
[distributions.fedora.repositories.local]
url = "file://%s"
`, key.Public, repo)), 0o644)

	kroot, kver := testdeb.Kernel(t)
	dir := t.TempDir()
	initrd, manifest := filepath.Join(dir, "initrd.img"), filepath.Join(dir, "manifest.json")
	out := run(t, e.bin, "build", "--generic", "--distribution", "fedora", "--config", conf, "--cache-dir", e.cacheDir,
		"--modules-dir", testdeb.ModulesDir(t, kroot, kver), "--kernel-version", kver, "--manifest", manifest, "-o", initrd)
	t.Logf("built: %s", strings.TrimSpace(out))
	m, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	var man struct {
		Packages []struct{ Name, Version, Arch, Repository, Backend string }
	}
	if err := json.Unmarshal(m, &man); err != nil {
		t.Fatal(err)
	}
	if p := man.Packages; len(p) != 1 || p[0].Name != "busybox" || p[0].Version != "1.36.1-1.fc41" || p[0].Arch != "x86_64" ||
		p[0].Repository != "local" || p[0].Backend != "dnf" {
		t.Errorf("manifest packages = %+v, want busybox 1.36.1-1.fc41 x86_64 from local by dnf", p)
	}

	img := makeFS(t, fixtureRoot(t), fsSpec{"ext4", rootUUID, "pkgroot", 64})
	disk := makeDisk(t, partSpec{label: "spare"}, partSpec{label: "rootpart", uuid: rootPartUUID, image: img})
	v := bootVM(t, vmConfig{kernel: filepath.Join(kroot, "boot", "vmlinuz-"+kver), initrd: initrd, cmdline: "root=UUID=" + rootUUID, disks: []string{disk}})
	got := expectRoot(t, v)
	if f := strings.Fields(got["root"]); len(f) != 3 || f[0] != "/dev/vda2" || f[1] != "ext4" {
		t.Errorf("root mount = %q, want /dev/vda2 ext4", got["root"])
	}
}
