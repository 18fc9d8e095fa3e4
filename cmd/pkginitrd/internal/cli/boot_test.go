package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestQemuArgs(t *testing.T) {
	base := bootOptions{initrd: "/o/initrd.img", kernel: "/o/vmlinuz-6.1", memMiB: 512, accel: "tcg", qemu: "qemu-system-x86_64"}
	tail := []string{"-m", "512", "-smp", "2", "-nographic", "-no-reboot", "-kernel", "/o/vmlinuz-6.1", "-initrd", "/o/initrd.img"}
	for _, tc := range []struct {
		name    string
		edit    func(o *bootOptions)
		want    []string // nil: an error
		wantErr string
	}{
		{"tcg", func(o *bootOptions) {}, append(append([]string{"qemu-system-x86_64", "-accel", "tcg"}, tail...), "-append", "console=ttyS0"), ""},
		{"auto falls back to tcg", func(o *bootOptions) { o.accel = "auto" },
			append(append([]string{"qemu-system-x86_64", "-accel", "kvm", "-accel", "tcg"}, tail...), "-append", "console=ttyS0"), ""},
		{"disks and command line", func(o *bootOptions) { o.disks = stringList{"/d/a.img", "/d/b.img"}; o.append = "root=LABEL=r rw" },
			append(append([]string{"qemu-system-x86_64", "-accel", "tcg"}, tail...), "-append", "console=ttyS0 root=LABEL=r rw",
				"-drive", "file=/d/a.img,if=virtio,format=raw", "-drive", "file=/d/b.img,if=virtio,format=raw"), ""},
		{"bad accel", func(o *bootOptions) { o.accel = "hvf" }, nil, `--accel "hvf": want kvm, tcg or auto`},
		{"tiny memory", func(o *bootOptions) { o.memMiB = 16 }, nil, "--memory 16: want at least 64 MiB"},
		{"comma in a disk path", func(o *bootOptions) { o.disks = stringList{"/d/a,b.img"} }, nil, "--disk /d/a,b.img: qemu cannot take a path with a comma"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.edit(&o)
			got, err := o.qemuArgs()
			if tc.want == nil {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("qemuArgs() error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("qemuArgs() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestBootFindsKernelBesideImage(t *testing.T) {
	touch := func(p string) {
		t.Helper()
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "initrd.img")
	touch(img)
	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := Main(t.Context(), Env{Args: append([]string{"pkginitrd", "boot"}, args...), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
		return out.String(), errb.String(), code
	}
	if _, stderr, code := run("--dry-run", img); code != 1 || !strings.Contains(stderr, "no vmlinuz-* beside "+img) {
		t.Errorf("boot without a kernel: exit %d, stderr %q; want 1 and a message naming the image", code, stderr)
	}
	touch(filepath.Join(dir, "vmlinuz-6.1.0-50-amd64"))
	out, stderr, code := run("--dry-run", "--accel", "tcg", "--append", "root=LABEL=my root", img)
	want := "qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -nographic -no-reboot -kernel " + filepath.Join(dir, "vmlinuz-6.1.0-50-amd64") +
		" -initrd " + img + " -append 'console=ttyS0 root=LABEL=my root'\n"
	if code != 0 || out != want {
		t.Errorf("boot --dry-run: exit %d, stdout %q (stderr %q); want %q", code, out, stderr, want)
	}
	touch(filepath.Join(dir, "vmlinuz-6.12.0-1-amd64"))
	if _, stderr, code := run("--dry-run", img); code != 1 || !strings.Contains(stderr, "several kernels beside") {
		t.Errorf("boot with two kernels: exit %d, stderr %q; want 1 and 'several kernels'", code, stderr)
	}
	if _, stderr, code := run("--dry-run", filepath.Join(dir, "missing.img")); code != 1 || !strings.Contains(stderr, "missing.img") {
		t.Errorf("boot of a missing image: exit %d, stderr %q; want 1 naming it", code, stderr)
	}
}
