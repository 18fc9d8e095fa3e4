package kernelinstall

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
		kind     Kind
		output   string // want output, "" = don't care
		modDir   string
		inReason string
	}{
		{"remove", []string{"remove", kver, "/boot/x/" + kver}, nil, Skip, "", "", "kernel-install removes the entry directory"},
		{"unknown verb", []string{"add-all"}, nil, Skip, "", "", "add-all: nothing to do"},
		{"initrds given", add(plain, "/tmp/initrd.img"), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": plain}, Skip, "", "", "initrds were given"},
		{"uki", add(plain), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_IMAGE_TYPE": "uki", "KERNEL_INSTALL_ROOT": plain}, Skip, "", "", "UKI"},
		{"other generator", add(plain), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_INITRD_GENERATOR": "dracut", "KERNEL_INSTALL_ROOT": plain}, Skip, "", "", "GENERATOR=dracut"},
		{"generator us", add(plain), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_INITRD_GENERATOR": "pkginitrd", "KERNEL_INSTALL_ROOT": plain, "KERNEL_INSTALL_IMAGE_TYPE": "pe"},
			Build, "/st/initrd", filepath.Join(plain, "usr/lib/modules", kver), "building"},
		{"generator empty is us", add(plain), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": plain},
			Build, "/st/initrd", filepath.Join(plain, "usr/lib/modules", kver), "building"},
		{"no staging area: entry dir", add(plain), map[string]string{"KERNEL_INSTALL_ROOT": plain},
			Build, filepath.Join(plain, "entry/initrd"), "", "building"},
		{"no staging area, no entry dir", []string{"add", kver, filepath.Join(plain, "nonexistent"), filepath.Join(plain, "boot/vmlinuz-"+kver)}, map[string]string{"KERNEL_INSTALL_ROOT": plain},
			Skip, "", "", "no staging area"},
		{"prebuilt initrd", add(prebuilt), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": prebuilt},
			Copy, "/st/initrd", "", "prebuilt"},
		{"debian initrd staged by 85-initrd", add(debian), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": debian},
			Skip, "", "", "85-initrd.install stages it"},
		{"debian stager masked", add(masked), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": masked},
			Build, "/st/initrd", "", "building"},
		{"debian stager not in KERNEL_INSTALL_PLUGINS", add(debian), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": debian,
			"KERNEL_INSTALL_PLUGINS": "/x/50-pkginitrd.install /usr/lib/kernel/install.d/90-loaderentry.install"}, Build, "/st/initrd", "", "building"},
		{"debian stager in KERNEL_INSTALL_PLUGINS", add(plain), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": debian,
			"KERNEL_INSTALL_PLUGINS": "/x/50-pkginitrd.install /usr/lib/kernel/install.d/55-initrd.install"}, Skip, "", "", "55-initrd.install stages it"},
		{"layout=uki", add(debian), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": debian, "KERNEL_INSTALL_LAYOUT": "uki"},
			Build, "/st/uki.efi", filepath.Join(debian, "usr/lib/modules", kver), "unified kernel image"},
		{"layout=uki, uki_generator us", add(prebuilt), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": prebuilt, "KERNEL_INSTALL_LAYOUT": "uki",
			"KERNEL_INSTALL_UKI_GENERATOR": "pkginitrd"}, Build, "/st/uki.efi", "", "unified kernel image"},
		{"layout=uki, uki_generator ukify", add(plain), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": plain, "KERNEL_INSTALL_LAYOUT": "uki",
			"KERNEL_INSTALL_UKI_GENERATOR": "ukify"}, Build, "/st/initrd", "", "building the initrd"},
		{"layout=uki, kernel is a UKI", add(plain), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": plain, "KERNEL_INSTALL_LAYOUT": "uki",
			"KERNEL_INSTALL_IMAGE_TYPE": "uki"}, Skip, "", "", "carries its own initrd"},
		{"layout=uki, other initrd generator", add(plain), map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": plain, "KERNEL_INSTALL_LAYOUT": "uki",
			"KERNEL_INSTALL_INITRD_GENERATOR": "dracut"}, Skip, "", "", "GENERATOR=dracut"},
		{"unmerged /usr", []string{"add", kver, "/e", "/k/vmlinuz"}, map[string]string{"KERNEL_INSTALL_STAGING_AREA": "/st", "KERNEL_INSTALL_ROOT": unmerged},
			Build, "/st/initrd", filepath.Join(unmerged, "lib/modules", kver), "building"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ParsePluginRequest(tc.args, func(k string) string { return tc.env[k] }, "")
			if err != nil {
				t.Fatalf("ParsePluginRequest(%q) = %v", tc.args, err)
			}
			p := PlanPlugin(req)
			if p.Kind != tc.kind || !strings.Contains(p.Reason, tc.inReason) {
				t.Errorf("PlanPlugin(%q, %v) = kind %d %q, want kind %d mentioning %q", tc.args, tc.env, p.Kind, p.Reason, tc.kind, tc.inReason)
			}
			if tc.output != "" && p.Output != tc.output {
				t.Errorf("PlanPlugin(%q) output = %q, want %q", tc.args, p.Output, tc.output)
			}
			if tc.modDir != "" && p.ModulesDir != tc.modDir {
				t.Errorf("PlanPlugin(%q) modules = %q, want %q", tc.args, p.ModulesDir, tc.modDir)
			}
			if wantUKI := strings.HasSuffix(tc.output, "uki.efi"); p.UKI != wantUKI || wantUKI && p.KernelImage != tc.args[3] {
				t.Errorf("PlanPlugin(%q) UKI = %v of %q, want %v of %q", tc.args, p.UKI, p.KernelImage, wantUKI, tc.args[3])
			}
			if tc.kind == Build && p.Root != normRoot(tc.env["KERNEL_INSTALL_ROOT"]) {
				t.Errorf("PlanPlugin(%q) root = %q, want %q", tc.args, p.Root, tc.env["KERNEL_INSTALL_ROOT"])
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
		if _, err := ParsePluginRequest(args, func(string) string { return "" }, ""); err == nil {
			t.Errorf("ParsePluginRequest(%q) = nil error, want one", args)
		}
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
		r    HookRequest
		kind Kind
		out  string
	}{
		{"postinst default boot dir", HookRequest{Phase: "postinst", KVer: kver}, Build, "/boot/initrd.img-" + kver},
		{"postinst image dir", HookRequest{Phase: "postinst", KVer: kver, Image: "/efi/debian/vmlinuz-" + kver}, Build, "/efi/debian/initrd.img-" + kver},
		{"postinst configure", HookRequest{Phase: "postinst", KVer: kver, Maint: "'configure' '6.1.76-1'", MaintSet: true}, Build, "/boot/initrd.img-" + kver},
		{"postinst abort-upgrade", HookRequest{Phase: "postinst", KVer: kver, Maint: "abort-upgrade 6.1.76-1", MaintSet: true}, Skip, ""},
		{"postinst INITRD=No", HookRequest{Phase: "postinst", KVer: kver, InitrdOff: true}, Skip, ""},
		{"postinst root", HookRequest{Phase: "postinst", KVer: kver, Root: root}, Build, filepath.Join(root, "boot/initrd.img-"+kver)},
		{"postrm remove", HookRequest{Phase: "postrm", KVer: kver, Maint: "remove", MaintSet: true}, Remove, "/boot/initrd.img-" + kver},
		{"postrm purge", HookRequest{Phase: "postrm", KVer: kver, Maint: "purge", MaintSet: true}, Skip, ""},
		{"postrm configure", HookRequest{Phase: "postrm", KVer: kver, Maint: "configure", MaintSet: true}, Skip, ""},
	} {
		p := PlanHook(tc.r)
		if p.Kind != tc.kind || (tc.out != "" && p.Output != tc.out) {
			t.Errorf("%s: PlanHook(%+v) = kind %d output %q (%s), want kind %d output %q", tc.name, tc.r, p.Kind, p.Output, p.Reason, tc.kind, tc.out)
		}
		if tc.r.Root != "" && p.ModulesDir != filepath.Join(root, "usr/lib/modules", kver) {
			t.Errorf("%s: PlanHook modules = %q, want under %s", tc.name, p.ModulesDir, root)
		}
	}
}

func TestHostOnlyBlocker(t *testing.T) {
	// Each case is a fake root and /proc: what a kernel hook finds when
	// dpkg runs it on a machine, in a chroot or in a container.
	other := t.TempDir()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, root, proc string)
		want  string // in the reason; "" = no reason
	}{
		{"no /proc/modules", func(*testing.T, string, string) {}, "no "},
		{"host", func(t *testing.T, root, proc string) { linkInit(t, proc, root) }, ""},
		{"pid 1 root unreadable", func(*testing.T, string, string) {}, ""},
		{"chroot", func(t *testing.T, _, proc string) { linkInit(t, proc, other) }, "chroot"},
		{"systemd container", func(t *testing.T, root, _ string) { mkfile(t, filepath.Join(root, "run/systemd/container"), "lxc\n") }, "container (lxc)"},
		{"pid 1 environment", func(t *testing.T, _, proc string) {
			mkfile(t, filepath.Join(proc, "1/environ"), "PATH=/bin\x00container=podman\x00")
		}, "container (podman)"},
		{"docker", func(t *testing.T, root, _ string) { mkfile(t, filepath.Join(root, ".dockerenv"), "") }, "container (docker)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			proc := filepath.Join(root, "proc")
			if tc.name != "no /proc/modules" {
				mkfile(t, filepath.Join(proc, "modules"), "ext4 1 0 - Live 0x0\n")
			}
			tc.setup(t, root, proc)
			got := HostOnlyBlocker(root, proc)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("HostOnlyBlocker(%s) = %q, want %q", tc.name, got, tc.want)
			}
		})
	}
}

// linkInit makes proc/1/root point at dir, as the kernel's magic link does.
func linkInit(t *testing.T, proc, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(proc, "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(proc, "1/root")); err != nil {
		t.Fatal(err)
	}
}

func TestCmdline(t *testing.T) {
	root, conf := t.TempDir(), t.TempDir()
	if got, err := Cmdline(root, ""); got != "" || err != nil {
		t.Errorf("Cmdline without files = %q, %v; want none", got, err)
	}
	steps := []struct {
		file, content, want string
	}{
		{filepath.Join(root, "usr/lib/kernel/cmdline"), "quiet\n", "quiet"},
		{filepath.Join(root, "etc/kernel/cmdline"), "root=LABEL=r ro\n  console=ttyS0\n", "root=LABEL=r ro console=ttyS0"},
		{filepath.Join(conf, "cmdline"), "from conf root", "from conf root"},
	}
	for _, s := range steps { // each file wins over the ones before it
		mkfile(t, s.file, s.content)
		if got, err := Cmdline(root, conf); got != s.want || err != nil {
			t.Errorf("Cmdline with %s = %q, %v; want %q", s.file, got, err, s.want)
		}
	}
}

func TestExtended(t *testing.T) {
	for _, tc := range []struct {
		in   Plan
		want Kind
	}{
		{Plan{Kind: Copy, Src: "/usr/lib/modules/k/initrd"}, Extend},
		{Plan{Kind: Build}, Build},
		{Plan{Kind: Skip}, Skip},
	} {
		if got := tc.in.Extended(); got.Kind != tc.want || got.Src != tc.in.Src {
			t.Errorf("Plan{Kind: %d}.Extended() = %+v, want kind %d", tc.in.Kind, got, tc.want)
		}
	}
}
