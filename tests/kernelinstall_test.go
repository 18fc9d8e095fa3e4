package tests

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testdeb"
)

// hookSystem is the system a kernel is installed into by the tests of the
// kernel-install plugin and the Debian hooks: a root holding Debian's kernel
// modules (usr/lib/modules/KVER) and a pkginitrd configuration, and a PATH
// whose pkginitrd is the binary under test. The host's /boot, /etc and
// /usr/lib/modules are never used.
type hookSystem struct {
	root, kver, vmlinuz string
	path                string // PATH for the hook scripts
	tmp                 string
}

// newHookSystem makes the root and a pkginitrd wrapper in PATH that adds
// --cache-dir (builds share the tests' package cache instead of filling
// /var/cache/pkginitrd) and, with rootFlag, --root pointing at the root.
func newHookSystem(t *testing.T, e *env, rootFlag bool) *hookSystem {
	t.Helper()
	kroot, kver := testdeb.Kernel(t)
	tmp := t.TempDir()
	s := &hookSystem{root: filepath.Join(tmp, "root"), kver: kver, vmlinuz: filepath.Join(kroot, "boot", "vmlinuz-"+kver), tmp: tmp}
	mods := filepath.Join(s.root, "usr", "lib", "modules")
	bin := filepath.Join(tmp, "bin")
	for _, d := range []string{mods, filepath.Join(s.root, "etc", "pkginitrd"), bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(kroot, "lib", "modules", kver), filepath.Join(mods, kver)); err != nil {
		t.Fatal(err)
	}
	// The root's own configuration: xz, so the test sees it was read.
	writeFile(t, filepath.Join(s.root, "etc", "pkginitrd", "pkginitrd.toml"), []byte("compression = \"xz\"\n"), 0o644)
	flags := "--cache-dir " + e.cacheDir
	if rootFlag {
		flags += " --root " + s.root
	}
	wrapper := "#!/bin/sh\ncmd=$1\nshift\nexec " + e.bin + " \"$cmd\" " + flags + " \"$@\"\n"
	writeFile(t, filepath.Join(bin, "pkginitrd"), []byte(wrapper), 0o755)
	s.path = bin + ":" + os.Getenv("PATH")
	return s
}

// hookCmd runs a command with the hook system's PATH and extra environment;
// it returns stdout and stderr apart.
func hookCmd(t *testing.T, s *hookSystem, environ []string, name string, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(append(os.Environ(), "PATH="+s.path, "TMPDIR="+s.tmp), environ...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

func repoFile(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("..", p))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatal(err)
	}
	return abs
}

// TestKernelInstallPlugin runs this machine's real kernel-install (systemd's)
// with only our plugin and systemd's 90-loaderentry.install, everything
// pointed at temporary directories, then boots the Boot Loader Spec entry it
// wrote: its linux, its initrd and its options.
func TestKernelInstallPlugin(t *testing.T) {
	e := setup(t)
	if _, err := exec.LookPath("kernel-install"); err != nil {
		t.Fatal("this test needs kernel-install (Debian package systemd)")
	}
	loaderentry := "/usr/lib/kernel/install.d/90-loaderentry.install"
	if _, err := os.Stat(loaderentry); err != nil {
		t.Fatalf("this test needs %s (Debian package systemd): %v", loaderentry, err)
	}
	s := newHookSystem(t, e, false)
	boot := filepath.Join(s.tmp, "boot")
	conf := filepath.Join(s.tmp, "kernel")
	if err := os.MkdirAll(boot, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(conf, "install.conf"), []byte("layout=bls\ninitrd_generator=pkginitrd\n"), 0o644)
	writeFile(t, filepath.Join(conf, "cmdline"), []byte("root=UUID="+rootUUID+"\n"), 0o644)
	const machineID = "0123456789abcdef0123456789abcdef"
	environ := []string{
		"KERNEL_INSTALL_CONF_ROOT=" + conf,
		"BOOT_ROOT=" + boot,
		"MACHINE_ID=" + machineID,
		"KERNEL_INSTALL_PLUGINS=" + repoFile(t, "kernel-install/50-pkginitrd.install") + " " + loaderentry,
		// Set by kernel-install --root= since systemd 255; 252 passes it on.
		"KERNEL_INSTALL_ROOT=" + s.root,
	}
	out, errs := hookCmd(t, s, environ, "kernel-install", "--verbose", "add", s.kver, s.vmlinuz)
	t.Logf("kernel-install add:\n%s%s", out, errs)
	if !strings.Contains(out, "pkginitrd: building the initrd for "+s.kver) || !strings.Contains(out, "generic") {
		t.Errorf("kernel-install --verbose add output lacks the plugin's lines (building, generic):\n%s", out)
	}

	entryFile := filepath.Join(boot, "loader", "entries", machineID+"-"+s.kver+".conf")
	entry := readEntry(t, entryFile)
	if len(entry["initrd"]) != 1 || filepath.Base(entry["initrd"][0]) != "initrd" || len(entry["linux"]) != 1 {
		t.Fatalf("%s: linux %q, initrd %q; want one linux and one initrd (ours)", entryFile, entry["linux"], entry["initrd"])
	}
	// Entry paths are relative to the file system holding BOOT_ROOT.
	mnt := strings.TrimSpace(run(t, "stat", "-c", "%m", boot))
	abs := func(p string) string {
		if mnt == "/" {
			return p
		}
		return filepath.Join(mnt, p)
	}
	kernel, initrd := abs(entry["linux"][0]), abs(entry["initrd"][0])
	if want := filepath.Join(boot, machineID, s.kver, "initrd"); initrd != want {
		t.Errorf("entry initrd = %s, want %s", initrd, want)
	}
	if insp := run(t, e.bin, "inspect", initrd); !regexp.MustCompile(`(?m)^segment \d+ \(xz at`).MatchString(insp) || !strings.Contains(insp, "usr/lib/modules/"+s.kver+"/") {
		t.Errorf("pkginitrd inspect %s: want an xz image (the root's /etc/pkginitrd) with %s's modules:\n%.2000s", initrd, s.kver, insp)
	}

	img := makeFS(t, fixtureRoot(t), fsSpec{"ext4", rootUUID, "pkgroot", 64})
	disk := makeDisk(t, partSpec{label: "rootpart", uuid: rootPartUUID, image: img})
	v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, cmdline: strings.Join(entry["options"], " "), disks: []string{disk}})
	got := expectRoot(t, v)
	if f := strings.Fields(got["root"]); len(f) != 3 || f[0] != "/dev/vda1" || f[1] != "ext4" {
		t.Errorf("root mount = %q, want /dev/vda1 ext4", got["root"])
	}

	out, errs = hookCmd(t, s, environ, "kernel-install", "--verbose", "remove", s.kver)
	if !strings.Contains(out, "pkginitrd: remove: nothing to do") {
		t.Errorf("kernel-install --verbose remove: no line from the plugin:\n%s%s", out, errs)
	}
	for _, p := range []string{entryFile, filepath.Join(boot, machineID, s.kver)} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("kernel-install remove left %s", p)
		}
	}
}

// readEntry parses a Boot Loader Spec type 1 entry: key → values.
func readEntry(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("kernel-install wrote no entry: %v", err)
	}
	m := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if k != "" && !strings.HasPrefix(k, "#") {
			m[k] = append(m[k], strings.TrimSpace(v))
		}
	}
	return m
}

// TestDebianKernelHooks runs the postinst.d and postrm.d hooks the way a
// Debian kernel package does (run-parts, KVER and the image path as
// arguments, DEB_MAINT_PARAMS) against a temporary boot directory.
func TestDebianKernelHooks(t *testing.T) {
	e := setup(t)
	if _, err := exec.LookPath("run-parts"); err != nil {
		t.Fatal("this test needs run-parts (Debian package debianutils)")
	}
	// Debian's hooks get no root from their caller: --root builds for the
	// test root (the host has no /usr/lib/modules/KVER).
	s := newHookSystem(t, e, true)
	boot := filepath.Join(s.tmp, "bootdir")
	if err := os.MkdirAll(boot, 0o755); err != nil {
		t.Fatal(err)
	}
	image := filepath.Join(boot, "vmlinuz-"+s.kver)
	initrd := filepath.Join(boot, "initrd.img-"+s.kver)
	runParts := func(dir, maint string) (string, string) {
		return hookCmd(t, s, []string{"DEB_MAINT_PARAMS=" + maint}, "run-parts", "--verbose", "--exit-on-error",
			"--arg="+s.kver, "--arg="+image, repoFile(t, dir))
	}

	// Not the configure step (e.g. abort-upgrade): nothing happens.
	runParts("kernel-install/postinst.d", "'abort-upgrade' '6.1.0'")
	if _, err := os.Stat(initrd); err == nil {
		t.Fatalf("postinst.d hook with DEB_MAINT_PARAMS=abort-upgrade wrote %s", initrd)
	}
	out, errs := runParts("kernel-install/postinst.d", "'configure' '6.1.0'")
	t.Logf("postinst.d:\n%s", errs)
	if out != "" {
		t.Errorf("postinst.d hook wrote to stdout (debconf owns it): %q", out)
	}
	if !strings.Contains(errs, "pkginitrd: generating "+initrd) {
		t.Errorf("postinst.d hook did not say what it generates:\n%s", errs)
	}
	if insp := run(t, e.bin, "inspect", initrd); !strings.Contains(insp, "usr/lib/modules/"+s.kver+"/") {
		t.Errorf("pkginitrd inspect %s: no modules of %s:\n%.2000s", initrd, s.kver, insp)
	}

	runParts("kernel-install/postrm.d", "'remove' '6.1.0'")
	if _, err := os.Stat(initrd); err == nil {
		t.Errorf("postrm.d hook left %s", initrd)
	}
}
