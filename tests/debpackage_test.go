package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDebianPackage installs pkginitrd as a Debian user would: the .deb that
// tools/mkdeb builds goes into a debootstrapped bookworm (dpkg -i in a
// chroot, /proc not mounted), then `apt-get install linux-image-amd64`. The
// kernel must come without initramfs-tools, its postinst hook must build
// /boot/initrd.img-KVER with pkginitrd (generic, after one warning line:
// host-only detection cannot work in a chroot), and that image must boot
// the root with the root's own kernel.
func TestDebianPackage(t *testing.T) {
	e := setup(t)
	for _, tool := range []string{"debootstrap", "chroot", "git", "make", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test needs %s in PATH (debootstrap: Debian package debootstrap; the README's test command installs it)", tool)
		}
	}
	deb := filepath.Join(t.TempDir(), "pkginitrd.deb")
	// tools/mkdeb prints the package's path last.
	built := strings.Fields(run(t, "../tools/mkdeb", filepath.Dir(deb)))
	if len(built) == 0 || os.Rename(built[len(built)-1], deb) != nil {
		t.Fatalf("tools/mkdeb printed %q, no package path", built)
	}
	t.Logf("built %s", built[len(built)-1])

	root := bookwormRoot(t, e)
	writeFile(t, filepath.Join(root, "tmp", "pkginitrd.deb"), readFile(t, deb), 0o644)
	if out, err := chroot(root, "dpkg", "-i", "/tmp/pkginitrd.deb"); err != nil {
		t.Fatalf("dpkg -i pkginitrd.deb in the chroot: %v\n%s", err, out)
	}
	out, err := chroot(root, "apt-get", "install", "-y", "-q", "--no-install-recommends", "linux-image-amd64")
	t.Logf("apt-get install linux-image-amd64:\n%s", out)
	if err != nil {
		t.Fatalf("apt-get install linux-image-amd64 (pkginitrd installed): %v", err)
	}
	if st, _ := chroot(root, "dpkg-query", "-W", "-f", "${Status}", "initramfs-tools"); strings.HasSuffix(st, " installed") {
		t.Errorf("apt-get install linux-image-amd64 installed initramfs-tools (%s): pkginitrd must satisfy linux-initramfs-tool", st)
	}
	kernels, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(kernels) != 1 {
		t.Fatalf("/boot after installing the kernel: vmlinuz %v, want one", kernels)
	}
	kver := strings.TrimPrefix(filepath.Base(kernels[0]), "vmlinuz-")
	if st, err := chroot(root, "dpkg-query", "-W", "-f", "${Status}", "linux-image-"+kver); err != nil || st != "install ok installed" {
		t.Errorf("linux-image-%s status %q (%v), want configured", kver, st, err)
	}
	if n := strings.Count(out, "pkginitrd: warning:"); n != 1 || !strings.Contains(out, "/proc/modules") || !strings.Contains(out, "pkginitrd: generating /boot/initrd.img-"+kver) {
		t.Errorf("kernel postinst output has %d pkginitrd warnings; want one naming /proc/modules and the line generating /boot/initrd.img-%s", n, kver)
	}
	initrd := filepath.Join(root, "boot", "initrd.img-"+kver)
	checkOurInit(t, e, initrd, filepath.Join(root, "usr", "bin", "pkginitrd"))

	// With /proc mounted the chroot is told apart from the host by PID 1's
	// root, where this machine has a /proc/modules and lets root read it.
	want := "running in a chroot"
	if _, err := os.Stat("/proc/1/root"); err != nil {
		want = "" // some sandboxes (gVisor) have neither
	} else if _, err := os.Stat("/proc/modules"); err != nil {
		want = "/proc/modules"
	}
	procMount(t, root)
	out, err = chroot(root, "pkginitrd", "kernel-hook", "postinst", kver)
	t.Logf("kernel-hook postinst in the chroot with /proc mounted:\n%s", out)
	if err != nil || strings.Count(out, "pkginitrd: warning:") != 1 || !strings.Contains(out, want) {
		t.Errorf("kernel-hook postinst in a chroot with /proc = %v, want success after one warning naming %q", err, want)
	}
	run(t, "umount", filepath.Join(root, "proc"))

	// Boot the root: its own kernel and initrd, an init that reports and powers off.
	init := strings.NewReplacer("#!/bin/busybox sh", "#!/bin/sh", "bb=/bin/busybox", "bb=",
		"$bb poweroff -f", "echo o >/proc/sysrq-trigger; sleep 60").Replace(rootInit)
	if err := os.Remove(filepath.Join(root, "sbin", "init")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "sbin", "init"), []byte(init), 0o755)
	kernel := filepath.Join(t.TempDir(), "vmlinuz")
	bootInitrd := filepath.Join(t.TempDir(), "initrd.img")
	writeFile(t, kernel, readFile(t, kernels[0]), 0o644)
	writeFile(t, bootInitrd, readFile(t, initrd), 0o644)
	for _, cache := range []string{"var/cache/apt/archives", "var/cache/pkginitrd", "var/lib/apt/lists"} {
		unmountCache(t, filepath.Join(root, cache))
	}
	img := makeFS(t, root, fsSpec{"ext4", rootUUID, "debroot", 2048})
	v := bootVM(t, vmConfig{kernel: kernel, initrd: bootInitrd, cmdline: "root=UUID=" + rootUUID, disks: []string{img}})
	got := expectRoot(t, v)
	if f := strings.Fields(got["root"]); len(f) != 3 || f[0] != "/dev/vda" || f[1] != "ext4" {
		t.Errorf("root mount = %q, want /dev/vda ext4", got["root"])
	}
}

// checkOurInit checks that initrd is pkginitrd's: its /init is the
// installed binary.
func checkOurInit(t *testing.T, e *env, initrd, bin string) {
	t.Helper()
	x := t.TempDir()
	run(t, e.bin, "inspect", "--extract", x, initrd)
	if !bytes.Equal(readFile(t, filepath.Join(x, "init")), readFile(t, bin)) {
		t.Errorf("%s: /init is not the installed pkginitrd (%s)", initrd, bin)
	}
	t.Logf("pkginitrd inspect --summary %s:\n%s", initrd, run(t, e.bin, "inspect", "--summary", initrd))
}

// bookwormRoot returns a fresh copy of the debootstrapped bookworm
// (minbase, see debootstrapRoot) with the release, its updates and security
// as apt sources and this machine's name servers and apt proxy settings.
// apt's archives and pkginitrd's cache in it are directories of the test
// cache, bind-mounted until the test ends.
func bookwormRoot(t *testing.T, e *env) string {
	t.Helper()
	cacheDir := filepath.Join(filepath.Dir(e.cacheDir), "debootstrap")
	for _, d := range []string{"apt-archives/partial", "pkginitrd"} {
		if err := os.MkdirAll(filepath.Join(cacheDir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	base := debootstrapRoot(t, e)
	root := filepath.Join(t.TempDir(), "root")
	run(t, "cp", "-a", base, root)
	if err := os.Remove(filepath.Join(root, "etc/apt/sources.list")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	sources := "Types: deb\nURIs: " + debMirror + "\nSuites: bookworm bookworm-updates\nComponents: main\n" +
		"Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n" +
		"Types: deb\nURIs: " + strings.TrimSuffix(debMirror, "/debian") + "/debian-security\nSuites: bookworm-security\nComponents: main\n" +
		"Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
	writeFile(t, filepath.Join(root, "etc/apt/sources.list.d/debian.sources"), []byte(sources), 0o644)
	writeFile(t, filepath.Join(root, "etc/resolv.conf"), readFile(t, "/etc/resolv.conf"), 0o644)
	confs, _ := filepath.Glob("/etc/apt/apt.conf.d/*")
	for _, f := range confs {
		if b, err := os.ReadFile(f); err == nil && bytes.Contains(bytes.ToLower(b), []byte("proxy")) {
			writeFile(t, filepath.Join(root, "etc/apt/apt.conf.d", filepath.Base(f)), b, 0o644)
		}
	}
	bindCache(t, filepath.Join(cacheDir, "apt-archives"), filepath.Join(root, "var/cache/apt/archives"))
	bindCache(t, filepath.Join(cacheDir, "pkginitrd"), filepath.Join(root, "var/cache/pkginitrd"))
	if out, err := chroot(root, "apt-get", "update", "-q"); err != nil {
		t.Fatalf("apt-get update in the chroot: %v\n%s", err, out)
	}
	return root
}

// chroot runs a command in root with a clean environment (and this
// machine's proxy settings) and returns its combined output.
func chroot(root string, args ...string) (string, error) {
	cmd := exec.Command("chroot", append([]string{root}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"}
	for _, v := range []string{"http_proxy", "https_proxy", "no_proxy"} {
		if s := os.Getenv(v); s != "" {
			cmd.Env = append(cmd.Env, v+"="+s)
		}
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// bindCache bind-mounts the cache directory src on dst until the test ends.
func bindCache(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	run(t, "mount", "--bind", src, dst)
	t.Cleanup(func() { unmountCache(t, dst) })
}

// unmountCache unmounts dst if something is mounted there and empties it.
func unmountCache(t *testing.T, dst string) {
	t.Helper()
	if err := exec.Command("mountpoint", "-q", dst).Run(); err == nil {
		run(t, "umount", dst)
	}
	ents, _ := os.ReadDir(dst)
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dst, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// procMount mounts a proc filesystem on root/proc until the test ends.
func procMount(t *testing.T, root string) {
	t.Helper()
	p := filepath.Join(root, "proc")
	run(t, "mount", "-t", "proc", "proc", p)
	t.Cleanup(func() {
		if exec.Command("mountpoint", "-q", p).Run() == nil {
			_ = exec.Command("umount", p).Run()
		}
	})
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
