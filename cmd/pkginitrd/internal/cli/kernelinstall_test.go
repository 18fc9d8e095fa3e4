package cli

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	kernelinstall "github.com/pkginitrd/pkginitrd/kernel-install"
	"github.com/pkginitrd/pkginitrd/pipeline"
)

func runCLIEnv(t *testing.T, environ map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), Env{Args: append([]string{"pkginitrd"}, args...), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return environ[k] }})
	return code, out.String(), errb.String()
}

func mkfile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestKernelInstallUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"add"},
		{"add", "6.1.0-1-amd64", "/boot/e"},
		{"add", "", "/boot/e", "/boot/vmlinuz"},
		{"add", "../x", "/boot/e", "/boot/vmlinuz"},
	} {
		if code, _, _ := runCLIEnv(t, nil, append([]string{"kernel-install"}, args...)...); code != 2 {
			t.Errorf("pkginitrd kernel-install %q exit = %d, want 2", args, code)
		}
	}
}

func TestKernelInstallCopiesPrebuilt(t *testing.T) {
	dir := t.TempDir()
	kdir := filepath.Join(dir, "usr/lib/modules/6.1.0-9-amd64")
	mkfile(t, filepath.Join(kdir, "vmlinuz"), "kernel")
	mkfile(t, filepath.Join(kdir, "initrd"), "prebuilt initrd")
	staging := filepath.Join(dir, "staging")
	if err := os.Mkdir(staging, 0o700); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KERNEL_INSTALL_STAGING_AREA": staging, "KERNEL_INSTALL_VERBOSE": "1"}
	code, out, stderr := runCLIEnv(t, env, "kernel-install", "add", "6.1.0-9-amd64", filepath.Join(dir, "entry"), filepath.Join(kdir, "vmlinuz"))
	if code != 0 || !strings.Contains(out, "prebuilt") {
		t.Fatalf("kernel-install add (prebuilt) = %d %q %q, want 0 and a line naming the prebuilt initrd", code, out, stderr)
	}
	b, err := os.ReadFile(filepath.Join(staging, "initrd"))
	fi, _ := os.Stat(filepath.Join(staging, "initrd"))
	if err != nil || string(b) != "prebuilt initrd" || fi.Mode().Perm() != 0o600 {
		t.Errorf("staged initrd = %q %v, %v; want the prebuilt contents, mode 0600", b, fi.Mode(), err)
	}
}

func TestKernelInstallStepsAside(t *testing.T) {
	dir := t.TempDir()
	staging := filepath.Join(dir, "staging")
	if err := os.Mkdir(staging, 0o700); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"KERNEL_INSTALL_STAGING_AREA": staging, "KERNEL_INSTALL_INITRD_GENERATOR": "dracut"}
	args := []string{"kernel-install", "add", "6.1.0-9-amd64", filepath.Join(dir, "entry"), filepath.Join(dir, "vmlinuz")}
	// Quiet unless KERNEL_INSTALL_VERBOSE=1, then one line saying why.
	if code, out, stderr := runCLIEnv(t, base, args...); code != 0 || out != "" || stderr != "" {
		t.Errorf("kernel-install add (generator dracut) = %d %q %q, want 0 and silence", code, out, stderr)
	}
	base["KERNEL_INSTALL_VERBOSE"] = "1"
	if code, out, _ := runCLIEnv(t, base, args...); code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "dracut") {
		t.Errorf("kernel-install add (generator dracut, verbose) = %d %q, want 0 and one line naming dracut", code, out)
	}
	if code, out, _ := runCLIEnv(t, base, "kernel-install", "remove", "6.1.0-9-amd64", filepath.Join(dir, "entry")); code != 0 || !strings.Contains(out, "remove") {
		t.Errorf("kernel-install remove = %d %q, want 0", code, out)
	}
	if ents, _ := os.ReadDir(staging); len(ents) != 0 {
		t.Errorf("staging area after stepping aside = %v, want empty", ents)
	}
}

func TestKernelInstallBuildNamesMissingModules(t *testing.T) {
	dir := t.TempDir()
	staging := filepath.Join(dir, "staging")
	if err := os.Mkdir(staging, 0o700); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KERNEL_INSTALL_STAGING_AREA": staging, "KERNEL_INSTALL_ROOT": dir}
	code, _, stderr := runCLIEnv(t, env, "kernel-install", "--cache-dir", filepath.Join(dir, "cache"), "add", "6.1.0-9-amd64", filepath.Join(dir, "entry"), filepath.Join(dir, "vmlinuz"))
	want := filepath.Join(dir, "usr/lib/modules/6.1.0-9-amd64")
	if code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("kernel-install add (no modules) = %d %q, want exit 1 naming %s", code, stderr, want)
	}
	if ents, _ := os.ReadDir(staging); len(ents) != 0 {
		t.Errorf("staging area after a failed build = %v, want empty", ents)
	}
}

func TestKernelInstallRejectsBadEpoch(t *testing.T) {
	dir := t.TempDir()
	mkfile(t, filepath.Join(dir, "usr/lib/modules/6.1.0-9-amd64/modules.order"), "")
	staging := filepath.Join(dir, "staging")
	if err := os.Mkdir(staging, 0o700); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KERNEL_INSTALL_STAGING_AREA": staging, "KERNEL_INSTALL_ROOT": dir, "SOURCE_DATE_EPOCH": "yesterday"}
	code, _, stderr := runCLIEnv(t, env, "kernel-install", "--cache-dir", filepath.Join(dir, "cache"), "add", "6.1.0-9-amd64", filepath.Join(dir, "entry"), filepath.Join(dir, "vmlinuz"))
	if code != 1 || !strings.Contains(stderr, "SOURCE_DATE_EPOCH") {
		t.Errorf("kernel-install add with SOURCE_DATE_EPOCH=yesterday = %d %q, want exit 1 naming it", code, stderr)
	}
}

func TestKernelHookPostrm(t *testing.T) {
	boot := t.TempDir()
	const kver = "6.1.0-9-amd64"
	img := filepath.Join(boot, "initrd.img-"+kver)
	mkfile(t, img, "image")
	args := []string{"kernel-hook", "postrm", kver, filepath.Join(boot, "vmlinuz-"+kver)}
	if code, _, stderr := runCLIEnv(t, map[string]string{"DEB_MAINT_PARAMS": "purge"}, args...); code != 0 || !isFile(img) {
		t.Errorf("kernel-hook postrm with DEB_MAINT_PARAMS=purge = %d %q, want 0 and the image kept", code, stderr)
	}
	if code, out, stderr := runCLIEnv(t, map[string]string{"DEB_MAINT_PARAMS": "'remove'"}, args...); code != 0 || isFile(img) || !strings.Contains(out, img) {
		t.Errorf("kernel-hook postrm = %d %q %q, want 0, %s removed and named", code, out, stderr, img)
	}
	// Removing what is already gone is fine (dpkg may run it twice).
	if code, _, stderr := runCLIEnv(t, map[string]string{"DEB_MAINT_PARAMS": "remove"}, args...); code != 0 {
		t.Errorf("kernel-hook postrm again = %d %q, want 0", code, stderr)
	}
	for _, bad := range [][]string{{"kernel-hook"}, {"kernel-hook", "postinst"}, {"kernel-hook", "preinst", kver}, {"kernel-hook", "postinst", kver, "a", "b"}} {
		if code, _, _ := runCLIEnv(t, nil, bad...); code != 2 {
			t.Errorf("pkginitrd %q exit = %d, want 2", bad, code)
		}
	}
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// TestHookFallsBackToGeneric runs a hook's build on fake hosts (--sysroot)
// where host-only detection cannot work: the build goes on as a generic
// one after exactly one warning line saying why. The module tree is empty
// and the build offline with an empty cache, so it fails later, naming
// that cause instead of the host.
func TestHookFallsBackToGeneric(t *testing.T) {
	const kver = "6.1.0-9-amd64"
	for _, tc := range []struct {
		name  string
		files map[string]string // below the fake host
		flags hookFlags
		warn  string // in the warning line; "" = no warning
	}{
		{"no /proc/modules (chroot without /proc)", nil, hookFlags{}, "proc/modules (is /proc mounted?)"},
		{"container", map[string]string{"proc/modules": "", ".dockerenv": ""}, hookFlags{}, "container (docker)"},
		{"detection fails", map[string]string{"proc/modules": "ext4 1 0 - Live 0x0\n"}, hookFlags{}, "mountinfo"},
		{"generic asked for", nil, hookFlags{generic: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			host := filepath.Join(dir, "host")
			if err := os.MkdirAll(filepath.Join(host, "proc"), 0o755); err != nil {
				t.Fatal(err)
			}
			for p, c := range tc.files {
				mkfile(t, filepath.Join(host, p), c)
			}
			mods := filepath.Join(dir, "modules", kver)
			mkfile(t, filepath.Join(mods, "modules.order"), "")
			h := tc.flags
			h.sysroot, h.cacheDir, h.offline = host, filepath.Join(dir, "cache"), true
			p := kernelinstall.Plan{Kind: kernelinstall.Build, KVer: kver, ModulesDir: mods, Output: filepath.Join(dir, "initrd.img-"+kver)}
			var out, errb bytes.Buffer
			env := Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, Executable: staticELF(t)}
			err := execute(context.Background(), env, h, p, false)
			var warnings []string
			for _, l := range strings.Split(errb.String(), "\n") {
				if strings.Contains(l, "warning") {
					warnings = append(warnings, l)
				}
			}
			if tc.warn == "" && len(warnings) != 0 || tc.warn != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tc.warn) || !strings.HasSuffix(warnings[0], "building a generic image")) {
				t.Errorf("hook build on %s: warnings %q, want one naming %q and the generic image", tc.name, warnings, tc.warn)
			}
			var he *pipeline.HostError
			if err == nil || errors.As(err, &he) || !strings.Contains(err.Error(), kver) {
				t.Errorf("hook build on %s (offline, empty cache) = %v, want a generic build's error naming %s", tc.name, err, kver)
			}
			t.Logf("error: %v", err)
		})
	}
}

// staticELF writes the smallest file debug/elf reads as a static x86-64
// executable: a header and no program headers (so no interpreter).
func staticELF(t *testing.T) string {
	t.Helper()
	h := make([]byte, 64)
	copy(h, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(h[16:], uint16(elf.ET_EXEC))
	binary.LittleEndian.PutUint16(h[18:], uint16(elf.EM_X86_64))
	binary.LittleEndian.PutUint32(h[20:], uint32(elf.EV_CURRENT))
	binary.LittleEndian.PutUint16(h[52:], 64) // e_ehsize
	p := filepath.Join(t.TempDir(), "pkginitrd")
	if err := os.WriteFile(p, h, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExecutableWithoutProc(t *testing.T) {
	noProc := func() (string, error) { return "", errors.New("readlink /proc/self/exe: no such file or directory") }
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh in PATH")
	}
	for _, tc := range []struct {
		name, arg0, want string
		self             func() (string, error)
	}{
		{"/proc mounted", "x", "/usr/bin/pkginitrd", func() (string, error) { return "/usr/bin/pkginitrd", nil }},
		{"full path (the hooks)", sh, sh, noProc},
		{"found in PATH", "sh", sh, noProc},
		{"nowhere", filepath.Join(t.TempDir(), "pkginitrd"), "", noProc},
	} {
		if got := executable(tc.self, tc.arg0); got != tc.want {
			t.Errorf("%s: executable(%q) = %q, want %q", tc.name, tc.arg0, got, tc.want)
		}
	}
}
