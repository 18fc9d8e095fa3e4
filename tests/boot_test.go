package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// images caches built images per argument list within one test run.
type images struct {
	mu   sync.Mutex
	done map[string][2]string
}

var built = &images{done: map[string][2]string{}} //nolint:gochecknoglobals // per-process build cache for tests

// buildImage runs `pkginitrd build --kernel-package linux-image-amd64` with
// extra flags and returns the kernel and initrd paths.
func buildImage(t *testing.T, e *env, extra ...string) (kernel, initrd string) {
	t.Helper()
	key := strings.Join(extra, " ")
	built.mu.Lock()
	defer built.mu.Unlock()
	if r, ok := built.done[key]; ok {
		return r[0], r[1]
	}
	dir, err := os.MkdirTemp(e.workDir, "img-")
	if err != nil {
		t.Fatal(err)
	}
	initrd = filepath.Join(dir, "initrd.img")
	args := append([]string{"build", "--kernel-package", "linux-image-amd64", "--cache-dir", e.cacheDir, "-o", initrd}, extra...)
	cmd := exec.Command(e.bin, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pkginitrd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	m, _ := filepath.Glob(filepath.Join(dir, "vmlinuz-*"))
	if len(m) != 1 {
		t.Fatalf("pkginitrd build --kernel-package placed no vmlinuz beside the image: %v\n%s", m, out)
	}
	t.Logf("built %s: %s", initrd, strings.TrimSpace(string(out)))
	built.done[key] = [2]string{m[0], initrd}
	return m[0], initrd
}

const bootTimeout = 4 * time.Minute

// expectRoot waits for the fixture root's report and checks the common facts:
// init is PID 1, the API filesystems were moved, the boot log survived.
func expectRoot(t *testing.T, v *vm) map[string]string {
	t.Helper()
	got := map[string]string{}
	for {
		m := v.expect(marker+` (\w[\w /]*?)(?:=(.*))?$`, bootTimeout)
		if m[1] == "done" {
			break
		}
		got[m[1]] = m[2]
	}
	t.Logf("root reached after %s", time.Since(v.started).Round(100*time.Millisecond))
	want := map[string]string{
		"pid":         "1",
		"mount /dev":  "devtmpfs",
		"mount /proc": "proc",
		"mount /sys":  "sysfs",
		"mount /run":  "tmpfs",
		"bootlog":     "yes",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("root reports %s=%q, want %q", k, got[k], w)
		}
	}
	v.waitExit(time.Minute)
	return got
}

const (
	rootUUID     = "6b3c2a4e-8f1d-4c55-9a2e-0d7e1f3a5b60"
	rootPartUUID = "1f0e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
)

func TestBootPlainRoot(t *testing.T) {
	e := setup(t)
	kernel, initrd := buildImage(t, e, "--generic")
	root := fixtureRoot(t)
	cases := []struct {
		name    string
		fs      fsSpec
		cmdline string
		wantDev string // device in /proc/mounts
		wantFS  string
		wantOpt string // prefix of the mount options
		wantSub string // subvolume path (btrfs), from mountinfo
	}{
		{"ext4-uuid", fsSpec{"ext4", rootUUID, "pkgroot", 64}, "root=UUID=" + rootUUID, "/dev/vda2", "ext4", "ro", ""},
		{"ext4-label", fsSpec{"ext4", rootUUID, "pkgroot", 64}, "root=LABEL=pkgroot rw", "/dev/vda2", "ext4", "rw", ""},
		{"ext4-partuuid", fsSpec{"ext4", rootUUID, "pkgroot", 64}, "root=PARTUUID=" + rootPartUUID, "/dev/vda2", "ext4", "ro", ""},
		{"ext4-partlabel", fsSpec{"ext4", rootUUID, "pkgroot", 64}, "root=PARTLABEL=rootpart rootfstype=ext4", "/dev/vda2", "ext4", "ro", ""},
		{"ext4-path", fsSpec{"ext4", rootUUID, "pkgroot", 64}, "root=/dev/vda2 rootflags=noatime", "/dev/vda2", "ext4", "ro,noatime", ""},
		{"xfs", fsSpec{"xfs", rootUUID, "pkgroot", 320}, "root=UUID=" + rootUUID, "/dev/vda2", "xfs", "ro", ""},
		{"btrfs", fsSpec{"btrfs", rootUUID, "pkgroot", 128}, "root=LABEL=pkgroot", "/dev/vda2", "btrfs", "ro", "/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := makeFS(t, root, tc.fs)
			disk := makeDisk(t, partSpec{label: "spare"}, partSpec{label: "rootpart", uuid: rootPartUUID, image: img})
			v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, cmdline: tc.cmdline, disks: []string{disk}})
			got := expectRoot(t, v)
			f := strings.Fields(got["root"])
			if len(f) != 3 || f[0] != tc.wantDev || f[1] != tc.wantFS || !strings.HasPrefix(f[2], tc.wantOpt) {
				t.Errorf("root mount = %q, want %s %s %s...", got["root"], tc.wantDev, tc.wantFS, tc.wantOpt)
			}
			if tc.wantSub != "" && got["rootpath"] != tc.wantSub {
				t.Errorf("root subvolume = %q, want %q", got["rootpath"], tc.wantSub)
			}
		})
	}
}

func TestBootMissingRootOpensShell(t *testing.T) {
	e := setup(t)
	kernel, initrd := buildImage(t, e, "--generic")
	v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, cmdline: "root=UUID=00000000-dead-beef-0000-000000000000 rd.timeout=5"})
	v.expect(`00000000-dead-beef-0000-000000000000`, bootTimeout)
	v.expect(`(?i)emergency shell`, time.Minute)
	time.Sleep(2 * time.Second)
	v.send("echo SHELL-$((40+2))\n")
	v.expect(`SHELL-42`, time.Minute)
}

// btrfsWithSubvolume makes a btrfs image whose root tree is also in the
// subvolume "@". This btrfs-progs cannot create subvolumes offline, so a
// helper VM does it: a pkginitrd image with btrfs-progs boots with no root,
// and the test types the commands into its emergency shell.
func btrfsWithSubvolume(t *testing.T, e *env, root string) string {
	t.Helper()
	img := makeFS(t, root, fsSpec{"btrfs", rootUUID, "pkgroot", 128})
	kernel, initrd := buildImage(t, e, "--generic", "--package", "btrfs-progs")
	v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, disks: []string{img},
		cmdline: "root=LABEL=no-such-root rd.timeout=1 rd.modules-load=btrfs"})
	v.expect(`(?i)emergency shell`, bootTimeout)
	time.Sleep(2 * time.Second)
	v.send("busybox mkdir -p /mnt && busybox mount -t btrfs /dev/vda /mnt && btrfs subvolume snapshot /mnt /mnt/@ && busybox umount /mnt && echo FIXTURE-$((6*7)) && busybox poweroff -f\n")
	v.expect(`FIXTURE-42`, 2*time.Minute)
	v.waitExit(time.Minute)
	return img
}

func TestBootBtrfsSubvolume(t *testing.T) {
	e := setup(t)
	kernel, initrd := buildImage(t, e, "--generic")
	img := btrfsWithSubvolume(t, e, fixtureRoot(t))
	disk := makeDisk(t, partSpec{label: "rootpart", uuid: rootPartUUID, image: img})
	v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, disks: []string{disk},
		cmdline: "root=UUID=" + rootUUID + " rootflags=subvol=@"})
	got := expectRoot(t, v)
	if got["rootpath"] != "/@" {
		t.Errorf("root mounted from subvolume %q, want /@ (rootflags=subvol=@)", got["rootpath"])
	}
	if f := strings.Fields(got["root"]); len(f) != 3 || f[1] != "btrfs" || !strings.Contains(f[2], "subvol=/@") {
		t.Errorf("root mount = %q, want btrfs with subvol=/@", got["root"])
	}
}

// TestBootTrixie builds for another release than the host's: trixie's
// packages and its 6.12 kernel, whose modules ship xz-compressed.
func TestBootTrixie(t *testing.T) {
	e := setup(t)
	kernel, initrd := buildImage(t, e, "--generic", "--release", "trixie")
	if !strings.Contains(kernel, "+deb13") {
		t.Errorf("--release trixie --kernel-package linux-image-amd64 gave kernel %s, want trixie's (+deb13)", kernel)
	}
	img := makeFS(t, fixtureRoot(t), fsSpec{"ext4", rootUUID, "pkgroot", 64})
	disk := makeDisk(t, partSpec{label: "rootpart", uuid: rootPartUUID, image: img})
	v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, disks: []string{disk}, cmdline: "root=PARTUUID=" + rootPartUUID + " quiet"})
	got := expectRoot(t, v)
	if f := strings.Fields(got["root"]); len(f) != 3 || f[1] != "ext4" {
		t.Errorf("root mount = %q, want ext4", got["root"])
	}
}

// TestBootTrixieCompressedModules boots trixie's 6.12 kernel with its
// modules stored in the image as shipped (.ko.xz), in an uncompressed image
// (where keeping them compressed matters most), and checks that stage0
// loaded the disk and filesystem modules from the .ko.xz files (6.12
// decompresses them in finit_module).
func TestBootTrixieCompressedModules(t *testing.T) {
	e := setup(t)
	kernel, initrd := buildImage(t, e, "--generic", "--release", "trixie", "--compression", "none")
	x := t.TempDir()
	run(t, e.bin, "inspect", "--extract", x, initrd)
	kver := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	modDir := filepath.Join(x, "usr", "lib", "modules", kver)
	var xz, plain int
	filepath.WalkDir(modDir, func(p string, d os.DirEntry, err error) error {
		switch {
		case err != nil || d.IsDir():
		case strings.HasSuffix(p, ".ko.xz"):
			xz++
		case strings.HasSuffix(p, ".ko"):
			plain++
		}
		return nil
	})
	if xz == 0 || plain != 0 {
		t.Errorf("image %s holds %d .ko.xz and %d .ko modules, want only .ko.xz", initrd, xz, plain)
	}
	if dep, err := os.ReadFile(filepath.Join(modDir, "modules.dep")); err != nil || !strings.Contains(string(dep), "kernel/fs/ext4/ext4.ko.xz:") {
		t.Errorf("the image's modules.dep does not name ext4.ko.xz (%v)", err)
	}
	t.Logf("image %s: %d bytes, %d .ko.xz modules", initrd, fileSize(t, initrd), xz)

	img := makeFS(t, fixtureRoot(t), fsSpec{"ext4", rootUUID, "pkgroot", 64})
	disk := makeDisk(t, partSpec{label: "rootpart", uuid: rootPartUUID, image: img})
	v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, disks: []string{disk}, cmdline: "root=PARTUUID=" + rootPartUUID})
	got := expectRoot(t, v)
	if f := strings.Fields(got["root"]); len(f) != 3 || f[1] != "ext4" {
		t.Errorf("root mount = %q, want ext4", got["root"])
	}
	log := v.tail(1 << 20)
	for _, m := range []string{"virtio_blk", "ext4", "jbd2"} {
		re := regexp.MustCompile(`loaded module module=` + m + ` file=\S+/` + m + `\.ko\.xz`)
		if !re.MatchString(log) {
			t.Errorf("console shows no %q: %s was not loaded from its .ko.xz", re, m)
		}
	}
	if strings.Contains(log, "decompressed by stage0") || strings.Contains(log, "not an xz compressed module") {
		t.Errorf("a module fell back to stage0's decompression on 6.12, which decompresses xz itself")
	}
}

// TestBootCommand runs `pkginitrd boot`, which starts qemu itself with the
// kernel it finds beside the image, and reads the fixture root's report
// from its output.
func TestBootCommand(t *testing.T) {
	e := setup(t)
	_, initrd := buildImage(t, e, "--generic")
	disk := makeFS(t, fixtureRoot(t), fsSpec{"ext4", rootUUID, "pkgroot", 64})
	lock := qemuLock(t)
	defer lock.Close()
	ctx, cancel := context.WithTimeout(t.Context(), bootTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, "boot", "--accel", "tcg", "--disk", disk, "--append", "root=UUID="+rootUUID+" panic=-1", initrd)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	console := string(out)
	if err != nil {
		t.Fatalf("pkginitrd boot: %v\n%s", err, tail(console, 40))
	}
	for _, want := range []string{marker + " pid=1", marker + " root=/dev/vda ext4", marker + " done"} {
		if !strings.Contains(console, want) {
			t.Errorf("pkginitrd boot output lacks %q:\n%s", want, tail(console, 40))
		}
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
