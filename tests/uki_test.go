package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// OVMF from Debian's ovmf package (REFERENCE.md §10): the code read-only,
// a private copy of the variable store.
const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// TestBootUKI builds a unified kernel image with `build --uki` (Debian's
// systemd-stub fetched through apt, the kernel package's vmlinuz, a
// generic image, --cmdline) and boots it under OVMF as the removable-media
// boot loader EFI/BOOT/BOOTX64.EFI: the stub must hand the kernel its
// embedded initrd and command line (no -kernel, -initrd or -append) for
// stage0 to find the root named only there.
func TestBootUKI(t *testing.T) {
	e := setup(t)
	for _, f := range []string{ovmfCode, ovmfVars} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("UKI boot needs OVMF (Debian package ovmf; the README's test command installs it): %v", err)
		}
	}
	dir := t.TempDir()
	efi := filepath.Join(dir, "linux.efi")
	args := []string{"build", "--generic", "--uki", "--kernel-package", "linux-image-amd64", "--cache-dir", e.cacheDir,
		"--cmdline", "console=ttyS0 panic=-1 root=LABEL=pkgroot", "-o", efi}
	out, err := exec.Command(e.bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("pkginitrd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("built %s: %s", efi, strings.TrimSpace(string(out)))
	esp := filepath.Join(dir, "esp")
	uki, err := os.ReadFile(efi)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(esp, "EFI", "BOOT"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(esp, "EFI", "BOOT", "BOOTX64.EFI"), uki, 0o644)
	vars, err := os.ReadFile(ovmfVars)
	if err != nil {
		t.Fatal(err)
	}
	varsCopy := filepath.Join(dir, "OVMF_VARS.fd")
	writeFile(t, varsCopy, vars, 0o644)

	img := makeFS(t, fixtureRoot(t), fsSpec{"ext4", rootUUID, "pkgroot", 64})
	disk := makeDisk(t, partSpec{label: "spare"}, partSpec{label: "rootpart", uuid: rootPartUUID, image: img})
	v := bootVM(t, vmConfig{disks: []string{disk}, extraArgs: []string{
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + ovmfCode,
		"-drive", "if=pflash,format=raw,unit=1,file=" + varsCopy,
		"-drive", "file=fat:rw:" + esp + ",format=raw",
		"-net", "none", // else OVMF tries PXE first
	}})
	got := expectRoot(t, v)
	if f := strings.Fields(got["root"]); len(f) != 3 || f[0] != "/dev/vda2" || f[1] != "ext4" {
		t.Errorf("root mount = %q, want /dev/vda2 ext4 (root=LABEL=pkgroot from the UKI's .cmdline)", got["root"])
	}
}
