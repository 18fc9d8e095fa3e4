package tests

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// shutdownScript is the fixture root's shutdown: it reports what stage0
// left in /run/initramfs, writes a file on the (rw) root, then either
// powers off hard with the root still mounted (pkgtest.shutdown=dirty on
// the command line, the control case, or no /run/initramfs/shutdown), or
// does what systemd-shutdown does
// when /run/initramfs/shutdown is executable (src/shutdown/shutdown.c,
// switch_root with SWITCH_ROOT_DONT_SYNC): bind /run/initramfs onto
// itself, move /dev, /proc and /sys in, pivot_root with the old root at
// /oldroot and exec /shutdown with the verb and systemd's options, as PID
// 1. The file is not synced: the shutdown's unmount must write it.
const shutdownScript = `$bb echo "` + marker + ` exitrd=$([ -x /run/initramfs/shutdown ] && $bb echo executable || $bb echo missing)"
$bb echo "` + marker + ` exitrd files=$($bb ls -A /run/initramfs | $bb tr '\n' ' ')"
$bb echo "` + marker + ` exitrd kib=$($bb du -sk /run/initramfs | $bb cut -f1)"
if $bb grep -q pkgtest.shutdown=dirty /proc/cmdline || [ ! -x /run/initramfs/shutdown ]; then
  $bb echo "written before a hard poweroff" > /shutdown-test.txt
  $bb echo "` + marker + ` shutdown=hard poweroff with the root mounted rw"
  $bb poweroff -f
fi
$bb echo "written before the exitrd shutdown" > /shutdown-test.txt
$bb echo "` + marker + ` shutdown=pivot into /run/initramfs"
$bb mount --make-rprivate /
$bb mount --bind /run/initramfs /run/initramfs
for d in dev proc sys; do $bb mount --move /$d /run/initramfs/$d; done
cd /run/initramfs
$bb pivot_root . oldroot
/oldroot/bin/busybox cat /proc/self/mountinfo
exec /oldroot/bin/busybox chroot . /shutdown poweroff --log-level=info --log-target=console --exit-code=0
`

// TestShutdown boots a root on LVM on LUKS read-write, shuts it down
// through stage0's /run/initramfs/shutdown the way systemd-shutdown does,
// and checks on the disk that the root filesystem was left clean: ext4
// keeps "Filesystem state: clean" while mounted with a journal but sets
// the needs_recovery feature, which only an unmount (or a read-only
// remount) clears. The control case powers off with the root mounted and
// must show needs_recovery, or the check could not tell.
func TestShutdown(t *testing.T) {
	e := setup(t)
	for _, tool := range []string{"dumpe2fs", "debugfs", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("TestShutdown needs %s (apt-get install e2fsprogs)", tool)
		}
	}
	kernel, initrd := buildImage(t, e, "--generic")
	root := fixtureRootWith(t, shutdownScript)
	disk := makeDMDisksFrom(t, e, root).lvmLuks

	// boot boots a root read-write and checks what stage0 kept in
	// /run/initramfs: with device-mapper devices (typing the passphrase),
	// the program and the pivot directories; without, nothing new.
	boot := func(t *testing.T, disk, cmdline string, dm bool) *vm {
		t.Helper()
		v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, disks: []string{disk}, cmdline: cmdline + " rw"})
		// fsck-root: the root was checked, so systemd-fsck-root need not.
		want := []string{"boot.log", "fsck-root"}
		if dm {
			v.expect(`is locked; enter its passphrase`, bootTimeout)
			time.Sleep(2 * time.Second)
			v.send(luksPassphrase + "\n")
			v.expect(`kept the shutdown program for a clean poweroff path=/run/initramfs/shutdown devices="dm-\d+ dm-\d+"`, bootTimeout)
			want = []string{"boot.log", "dev", "fsck-root", "oldroot", "proc", "run", "shutdown", "sys"}
		}
		wantX := map[bool]string{true: "executable", false: "missing"}[dm]
		if m := v.expect(marker+` exitrd=(\w+)`, bootTimeout); m[1] != wantX {
			t.Fatalf("/run/initramfs/shutdown is %s in the real root, want %s", m[1], wantX)
		}
		if files := strings.Fields(v.expect(marker+` exitrd files=(.*)`, time.Minute)[1]); !slices.Equal(files, want) {
			t.Errorf("/run/initramfs holds %q, want %q (no key material, nothing else)", files, want)
		}
		kib, _ := strconv.Atoi(v.expect(marker+` exitrd kib=(\d+)`, time.Minute)[1])
		t.Logf("/run/initramfs uses %d KiB of RAM", kib)
		return v
	}
	dmLine := "root=/dev/mapper/vgc-root rd.luks.uuid=" + lvmLuksUUID

	t.Run("plain-root-keeps-nothing", func(t *testing.T) {
		img := makeFS(t, root, fsSpec{"ext4", rootUUID, "pkgroot", 16})
		v := boot(t, makeDisk(t, partSpec{label: "rootpart", image: img}), "root=UUID="+rootUUID, false)
		v.expect(marker+` shutdown=hard poweroff`, time.Minute)
		v.waitExit(time.Minute)
		if strings.Contains(v.tail(1<<20), "kept the shutdown program") {
			t.Errorf("stage0 kept the shutdown program for a root without device-mapper or loop devices")
		}
	})

	t.Run("hard-poweroff-is-dirty", func(t *testing.T) {
		v := boot(t, disk, dmLine+" pkgtest.shutdown=dirty", true)
		v.expect(marker+` shutdown=hard poweroff`, time.Minute)
		v.waitExit(time.Minute)
		fs := rootFSState(t, e, disk)
		if fs.clean() {
			t.Errorf("after a hard poweroff with the root mounted rw the filesystem reads clean (state %q, features %q): the check cannot tell a dirty root", fs.state, fs.features)
		}
	})

	t.Run("exitrd", func(t *testing.T) {
		v := boot(t, disk, dmLine, true)
		v.expect(marker+` shutdown=pivot`, time.Minute)
		for _, re := range []string{
			`pkginitrd: shutdown: tearing down the storage stack, then poweroff$`,
			`pkginitrd: shutdown: unmounted /oldroot/run type=tmpfs`,
			`pkginitrd: shutdown: unmounted /oldroot type=ext4 source=/dev/\S+$`,
			`pkginitrd: shutdown: removed device-mapper device vgc-root \(dm-\d+, LVM\)$`,
			`pkginitrd: shutdown: removed device-mapper device luks-` + lvmLuksUUID + ` \(dm-\d+, dm-crypt\), after vgc-root$`,
			`pkginitrd: shutdown: no device-mapper or loop devices left`,
			`pkginitrd: shutdown: powering off`,
			`reboot: Power down`,
		} {
			v.expect(re, 2*time.Minute)
		}
		v.waitExit(time.Minute)
		log := v.tail(1 << 20)
		for _, bad := range []string{"Kernel panic", "pkginitrd: warning: shutdown", "pkginitrd: error"} {
			if strings.Contains(log, bad) {
				t.Errorf("console shows %q", bad)
			}
		}

		fs := rootFSState(t, e, disk)
		if !fs.clean() {
			t.Errorf("after the exitrd shutdown the root filesystem is not clean: state %q, features %q", fs.state, fs.features)
		}
		// debugfs prints its banner on stderr, the file on stdout.
		if out, err := exec.Command("debugfs", "-R", "cat /shutdown-test.txt", fs.image).Output(); err != nil {
			t.Errorf("debugfs cat /shutdown-test.txt: %v", err)
		} else if got := strings.TrimSpace(string(out)); got != "written before the exitrd shutdown" {
			t.Errorf("the file written just before the shutdown holds %q on disk, want the text the root wrote", got)
		}
		if out, err := exec.Command("e2fsck", "-fn", fs.image).CombinedOutput(); err != nil {
			t.Errorf("e2fsck -fn on the root after the shutdown: %v\n%s", err, out)
		}
	})
}

// ext4State is what dumpe2fs -h says about a copy of the root filesystem.
type ext4State struct {
	image    string // the copy
	state    string // "Filesystem state"
	features []string
}

// clean reports an ext4 with a journal left unmounted cleanly.
func (s ext4State) clean() bool {
	return s.state == "clean" && !slices.Contains(s.features, "needs_recovery")
}

// rootFSState copies the root logical volume (vgc/root) of the LVM on
// LUKS disk out through a helper VM onto a scratch disk, and reads its
// superblock there with the host's dumpe2fs.
func rootFSState(t *testing.T, e *env, disk string) ext4State {
	t.Helper()
	scratch := emptyDisk(t, "root-copy.img", 24)
	v := dmShell(t, e, disk, scratch)
	cmds := openLVMOnLUKS("/dev/vda", "y", "vgc")
	cmds = append(cmds, "busybox dd if=/dev/vgc/root of=/dev/vdb bs=1M 2>/dev/null")
	cmds = append(cmds, closeLVMOnLUKS("y", "vgc")...)
	shellScript(t, v, "copying the root volume out", 3*time.Minute, append(cmds, "busybox sync")...)
	powerOffShell(t, v)
	return readExt4State(t, scratch)
}

// readExt4State reads the superblock of the ext4 (a copy) in image.
func readExt4State(t *testing.T, image string) ext4State {
	t.Helper()
	out := run(t, "dumpe2fs", "-h", image)
	s := ext4State{image: image}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "Filesystem state":
			s.state = strings.TrimSpace(v)
		case "Filesystem features":
			s.features = strings.Fields(v)
		}
	}
	if s.state == "" || !slices.Contains(s.features, "has_journal") {
		t.Fatalf("dumpe2fs -h %s: no state or no journal:\n%s", filepath.Base(image), out)
	}
	t.Logf("root filesystem: state %q, features %q", s.state, s.features)
	return s
}
