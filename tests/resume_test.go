package tests

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

const swapUUID = "9d4e1f60-5555-4666-a777-b88899990000"

// hibernateScript runs in the fixture root: it keeps a random token in a
// shell variable and in a tmpfs file, turns the swap on and hibernates;
// when the machine is resumed the same shell goes on and reports both.
// A fresh boot instead would start over and print pid=1 again.
const hibernateScript = `$bb mount -t tmpfs tmpfs /tmp
token=$($bb cat /proc/sys/kernel/random/uuid)
$bb echo "$token" > /tmp/token
$bb swapon /dev/vda3 || $bb echo "` + marker + ` swapon failed"
$bb echo "` + marker + ` resume device=$($bb cat /sys/power/resume)"
$bb echo "` + marker + ` hibernating token=$token"
$bb echo shutdown > /sys/power/disk
if $bb echo disk > /sys/power/state; then
  $bb echo "` + marker + ` resumed var=$token file=$($bb cat /tmp/token)"
else
  $bb echo "` + marker + ` hibernation failed"
fi
`

// TestResumeFromHibernation hibernates a guest to its swap partition and
// boots it again with the same image and command line: stage0 hands the
// swap to the kernel, which restores the guest, and the shell that
// hibernated reports the token it held in memory.
func TestResumeFromHibernation(t *testing.T) {
	e := setup(t)
	kernel, initrd := buildImage(t, e, "--generic")
	img := makeFS(t, fixtureRootWith(t, hibernateScript), fsSpec{"ext4", rootUUID, "pkgroot", 64})
	swap := filepath.Join(t.TempDir(), "swap.img")
	f, err := os.Create(swap)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(320 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	run(t, "mkswap", "-U", swapUUID, swap)
	disk := makeDisk(t, partSpec{label: "spare"}, partSpec{label: "rootpart", uuid: rootPartUUID, image: img}, partSpec{label: "swap", image: swap})
	cmdline := "root=UUID=" + rootUUID + " resume=UUID=" + swapUUID

	v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, cmdline: cmdline, disks: []string{disk}})
	v.expect(marker+` pid=1$`, bootTimeout)
	if m := v.expect(marker+` resume device=(.*)$`, bootTimeout); m[1] != "254:3" {
		t.Errorf("/sys/power/resume in the root = %q, want the swap partition 254:3 (stage0 set it)", m[1])
	}
	token := v.expect(marker+` hibernating token=(\S+)$`, bootTimeout)[1]
	v.waitExit(6 * time.Minute) // the kernel writes the image and powers off
	t.Logf("hibernated after %s", time.Since(v.started).Round(100*time.Millisecond))

	v = bootVM(t, vmConfig{kernel: kernel, initrd: initrd, cmdline: cmdline, disks: []string{disk}})
	m := v.expect(marker+` (resumed var=(\S+) file=(\S+)|pid=1|hibernation failed)$`, 2*bootTimeout)
	if m[2] == "" {
		t.Fatalf("second boot: %q, want the hibernated shell to go on (resumed …)", m[0])
	}
	if m[2] != token || m[3] != token {
		t.Errorf("after resuming: variable %q, tmpfs file %q; want both %q", m[2], m[3], token)
	}
	t.Logf("resumed after %s", time.Since(v.started).Round(100*time.Millisecond))
	v.expect(marker+` done$`, bootTimeout)
	v.waitExit(time.Minute)
}
