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
