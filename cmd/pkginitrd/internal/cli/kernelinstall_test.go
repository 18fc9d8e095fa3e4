package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

func TestPlanPlugin(t *testing.T) {
	const kver = "6.1.0-56-amd64"
	// Three roots: a plain one, one where the kernel package ships a
	// prebuilt initrd, and a Debian one with /boot/initrd.img-KVER and
	// 85-initrd.install (optionally masked in /etc).
	plain, prebuilt, debian, masked := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	for _, r := range []string{plain, prebuilt, debian, masked} {
		mkfile(t, filepath.Join(r, "usr/lib/modules", kver, "vmlinuz"), "kernel")
		mkfile(t, filepath.Join(r, "boot/vmlinuz-"+kver), "kernel")
		if err := os.MkdirAll(filepath.Join(r, "entry"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mkfile(t, filepath.Join(prebuilt, "usr/lib/modules", kver, "initrd"), "prebuilt")
	for _, r := range []string{debian, masked} {
		mkfile(t, filepath.Join(r, "boot/initrd.img-"+kver), "debian")
		mkfile(t, filepath.Join(r, "usr/lib/kernel/install.d/85-initrd.install"), "#!/bin/sh\n")
	}
	if err := os.MkdirAll(filepath.Join(masked, "etc/kernel/install.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/null", filepath.Join(masked, "etc/kernel/install.d/85-initrd.install")); err != nil {
		t.Fatal(err)
	}
	unmerged := t.TempDir()
	mkfile(t, filepath.Join(unmerged, "lib/modules", kver, "modules.order"), "")

	add := func(root string, extra ...string) []string {
		return append([]string{"add", kver, filepath.Join(root, "entry"), filepath.Join(root, "usr/lib/modules", kver, "vmlinuz")}, extra...)
	}
	cases := []struct {
		name     string
		args     []string
		env      map[string]string
		kind     planKind
		output   string // want output, "" = don't care
		modDir   string
		inReason string
	}{
		{"remove", []string{"remove", kver, "/boot/x/" + kver}, nil, planSkip, "", "", "kernel-install removes the entry directory"},
		{"unknown verb", []string{"add-all"}, nil, planSkip, "", "", "add-all: nothing to do"},
		{"initrds given", add(plain, "/tmp/initrd.img"), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": plain}, planSkip, "", "", "initrds were given"},
		{"uki", add(plain), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_IMAGE_TYPE": "uki", "KERNEL_INSTALL_ROOT": plain}, planSkip, "", "", "UKI"},
		{"other generator", add(plain), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_INITRD_GENERATOR": "dracut", "KERNEL_INSTALL_ROOT": plain}, planSkip, "", "", "GENERATOR=dracut"},
		{"generator us", add(plain), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_INITRD_GENERATOR": "pkginitrd", "KERNEL_INSTALL_ROOT": plain, "KERNEL_INSTALL_IMAGE_TYPE": "pe"},
			planBuild, "/st/initrd", filepath.Join(plain, "usr/lib/modules", kver), "building"},
		{"generator empty is us", add(plain), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": plain},
			planBuild, "/st/initrd", filepath.Join(plain, "usr/lib/modules", kver), "building"},
		{"no staging area: entry dir", add(plain), map[string]string{"KERNEL_INSTALL_ROOT": plain},
			planBuild, filepath.Join(plain, "entry/initrd"), "", "building"},
		{"no staging area, no entry dir", []string{"add", kver, filepath.Join(plain, "nonexistent"), filepath.Join(plain, "boot/vmlinuz-"+kver)}, map[string]string{"KERNEL_INSTALL_ROOT": plain},
			planSkip, "", "", "no staging area"},
		{"prebuilt initrd", add(prebuilt), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": prebuilt},
			planCopy, "/st/initrd", "", "prebuilt"},
		{"debian initrd staged by 85-initrd", add(debian), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": debian},
			planSkip, "", "", "85-initrd.install stages it"},
		{"debian stager masked", add(masked), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": masked},
			planBuild, "/st/initrd", "", "building"},
		{"debian stager not in KERNEL_INSTALL_PLUGINS", add(debian), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": debian,
			"KERNEL_INSTALL_PLUGINS": "/x/50-pkginitrd.install /usr/lib/kernel/install.d/90-loaderentry.install"}, planBuild, "/st/initrd", "", "building"},
		{"debian stager in KERNEL_INSTALL_PLUGINS", add(plain), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": debian,
			"KERNEL_INSTALL_PLUGINS": "/x/50-pkginitrd.install /usr/lib/kernel/install.d/55-initrd.install"}, planSkip, "", "", "55-initrd.install stages it"},
		{"unmerged /usr", []string{"add", kver, "/e", "/k/vmlinuz"}, map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": unmerged},
			planBuild, "/st/initrd", filepath.Join(unmerged, "lib/modules", kver), "building"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := parsePluginRequest(tc.args, func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatalf("parsePluginRequest(%q) = %v", tc.args, err)
			}
			p := planPlugin(req)
			if p.kind != tc.kind || !strings.Contains(p.reason, tc.inReason) {
				t.Errorf("planPlugin(%q, %v) = kind %d %q, want kind %d mentioning %q", tc.args, tc.env, p.kind, p.reason, tc.kind, tc.inReason)
			}
			if tc.output != "" && p.output != tc.output {
				t.Errorf("planPlugin(%q) output = %q, want %q", tc.args, p.output, tc.output)
			}
			if tc.modDir != "" && p.modulesDir != tc.modDir {
				t.Errorf("planPlugin(%q) modules = %q, want %q", tc.args, p.modulesDir, tc.modDir)
			}
			if tc.kind == planBuild && p.root != normRoot(tc.env["KERNEL_INSTALL_ROOT"]) {
				t.Errorf("planPlugin(%q) root = %q, want %q", tc.args, p.root, tc.env["KERNEL_INSTALL_ROOT"])
			}
		})
	}
}

func TestParsePluginRequestErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"add"},
		{"add", "6.1.0-1-amd64", "/boot/e"},
		{"add", "", "/boot/e", "/boot/vmlinuz"},
		{"add", "../x", "/boot/e", "/boot/vmlinuz"},
	} {
		if _, err := parsePluginRequest(args, func(string) string { return "" }); err == nil {
			t.Errorf("parsePluginRequest(%q) = nil error, want one", args)
		}
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

func TestFirstShellWord(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"configure 6.1.76-1", "configure"},
		{"'configure' '6.1.76-1'", "configure"},
		{`  "remove" x`, "remove"},
		{`con'fig'ure`, "configure"},
		{`"a\"b" c`, `a"b`},
		{`a\ b c`, "a b"},
		{"'abort-upgrade'", "abort-upgrade"},
		{"", ""},
		{"'unterminated", "unterminated"},
	} {
		if got := firstShellWord(tc.in); got != tc.want {
			t.Errorf("firstShellWord(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPlanHook(t *testing.T) {
	const kver = "6.1.0-56-amd64"
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "usr/lib/modules", kver, "modules.order"), "")
	for _, tc := range []struct {
		name string
		r    hookRequest
		kind planKind
		out  string
	}{
		{"postinst default boot dir", hookRequest{phase: "postinst", kver: kver}, planBuild, "/boot/initrd.img-" + kver},
		{"postinst image dir", hookRequest{phase: "postinst", kver: kver, image: "/efi/debian/vmlinuz-" + kver}, planBuild, "/efi/debian/initrd.img-" + kver},
		{"postinst configure", hookRequest{phase: "postinst", kver: kver, maint: "'configure' '6.1.76-1'", maintSet: true}, planBuild, "/boot/initrd.img-" + kver},
		{"postinst abort-upgrade", hookRequest{phase: "postinst", kver: kver, maint: "abort-upgrade 6.1.76-1", maintSet: true}, planSkip, ""},
		{"postinst INITRD=No", hookRequest{phase: "postinst", kver: kver, initrdOff: true}, planSkip, ""},
		{"postinst root", hookRequest{phase: "postinst", kver: kver, root: root}, planBuild, filepath.Join(root, "boot/initrd.img-"+kver)},
		{"postrm remove", hookRequest{phase: "postrm", kver: kver, maint: "remove", maintSet: true}, planRemove, "/boot/initrd.img-" + kver},
		{"postrm purge", hookRequest{phase: "postrm", kver: kver, maint: "purge", maintSet: true}, planSkip, ""},
		{"postrm configure", hookRequest{phase: "postrm", kver: kver, maint: "configure", maintSet: true}, planSkip, ""},
	} {
		p := planHook(tc.r)
		if p.kind != tc.kind || (tc.out != "" && p.output != tc.out) {
			t.Errorf("%s: planHook(%+v) = kind %d output %q (%s), want kind %d output %q", tc.name, tc.r, p.kind, p.output, p.reason, tc.kind, tc.out)
		}
		if tc.r.root != "" && p.modulesDir != filepath.Join(root, "usr/lib/modules", kver) {
			t.Errorf("%s: planHook modules = %q, want under %s", tc.name, p.modulesDir, root)
		}
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
