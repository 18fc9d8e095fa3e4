package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// dmShell boots the --generic image with disks attached (vda, vdb, ...)
// into its emergency shell, with stage0's own LUKS and LVM activation off
// (rd.luks=0 rd.lvm=0) so nothing touches them, and returns the VM ready
// for shellScript: the way the device-mapper fixtures are made.
func dmShell(t *testing.T, e *env, disks ...string) *vm {
	t.Helper()
	kernel, initrd := buildImage(t, e, "--generic")
	v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, disks: disks,
		cmdline: "root=LABEL=no-such-root rd.timeout=1 rd.luks=0 rd.lvm=0 rd.modules-load=dm_crypt,xts,algif_skcipher,algif_hash"})
	v.expect(`(?i)emergency shell`, bootTimeout)
	time.Sleep(2 * time.Second)
	return v
}

// dmShellEnv sets up the shell for cryptsetup and lvm without udev; $C is
// the lvm --config that needs no udev and writes no backups.
const dmShellEnv = `export DM_DISABLE_UDEV=1 C='activation{udev_sync=0 udev_rules=0} devices{use_devicesfile=0 obtain_device_list_from_udev=0} backup{backup=0 archive=0}'`

// shellScript types the commands (joined with &&) into v's shell and fails
// the test unless all of them succeed within timeout. The success and
// failure words are computed by the shell, so the echoed command line
// cannot match them.
func shellScript(t *testing.T, v *vm, what string, timeout time.Duration, cmds ...string) {
	t.Helper()
	v.send(dmShellEnv + "\n" + strings.Join(cmds, " && ") + ` && echo SCRIPT-OK$((6*7)) || echo SCRIPT-FAIL$((0+1))` + "\n")
	if m := v.expect(`SCRIPT-(OK42|FAIL1)`, timeout); m[1] != "OK42" {
		t.Fatalf("%s failed in the helper VM (see the console output)", what)
	}
}

// powerOffShell leaves the helper VM.
func powerOffShell(t *testing.T, v *vm) {
	t.Helper()
	v.send("busybox sync; busybox poweroff -f\n")
	v.waitExit(time.Minute)
}

// openLVMOnLUKS returns the commands that unlock the LUKS container on dev
// as mapping name and activate the volume group vg inside it.
func openLVMOnLUKS(dev, name, vg string) []string {
	return []string{
		fmt.Sprintf(`echo -n %s | cryptsetup open --disable-locks --key-file=- %s %s`, luksPassphrase, dev, name),
		fmt.Sprintf(`lvm vgchange --config "$C" -ay %s`, vg),
	}
}

// closeLVMOnLUKS undoes openLVMOnLUKS.
func closeLVMOnLUKS(name, vg string) []string {
	return []string{fmt.Sprintf(`lvm vgchange --config "$C" -an %s`, vg), "cryptsetup close " + name}
}
