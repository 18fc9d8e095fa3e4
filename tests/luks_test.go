package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pkginitrd/pkginitrd/internal/luks"
)

const (
	wrongPassphrase = "not-the-passphrase"
	keyPath         = "/etc/pkginitrd/keys/root.key"
)

// dmCase is one boot of a root behind device-mapper layers.
type dmCase struct {
	name    string
	disks   []string // attached as virtio disks with discard=unmap
	initrd  string
	cmdline string
	typing  func(v *vm)
	wantLog string // a console line (after the typing) before the root's report
	// wantDM matches the root's report on the device-mapper device dm-0:
	// "NAME ro=0|1 discard=BYTES" ("" = not checked).
	wantDM string
}

// typePassphrase waits for the prompt's announcement and types pass.
func typePassphrase(v *vm, pass string) {
	v.t.Helper()
	v.expect(`is locked; enter its passphrase`, bootTimeout)
	time.Sleep(2 * time.Second)
	v.send(pass + "\n")
}

// discardDrives attaches disks as virtio disks that pass discards down.
func discardDrives(disks []string) []string {
	var a []string
	for _, d := range disks {
		a = append(a, "-drive", "file="+d+",if=virtio,format=raw,discard=unmap")
	}
	return a
}

// bootDM boots tc and checks what every device-mapper root must show: the
// root is a dm device holding ext4, no passphrase on the console, no key
// material under /run or on the new root, no prompt when none is typed.
func bootDM(t *testing.T, kernel string, tc dmCase) map[string]string {
	t.Helper()
	v := bootVM(t, vmConfig{kernel: kernel, initrd: tc.initrd, cmdline: tc.cmdline, extraArgs: discardDrives(tc.disks)})
	if tc.typing != nil {
		tc.typing(v)
	}
	if tc.wantLog != "" {
		v.expect(tc.wantLog, bootTimeout)
	}
	got := expectRoot(t, v)
	all := v.tail(1 << 20)
	if strings.Contains(all, luksPassphrase) || strings.Contains(all, wrongPassphrase) {
		t.Errorf("a passphrase appears on the console (echo not off?)")
	}
	if tc.typing == nil && strings.Contains(all, "enter its passphrase") {
		t.Errorf("stage0 asked for a passphrase; want the boot to need none")
	}
	f := strings.Fields(got["root"])
	if len(f) != 3 || !isDMSource(f[0]) || f[1] != "ext4" {
		t.Errorf("root mount = %q, want a device-mapper device, ext4", got["root"])
	}
	if got["keyleak"] != "none" {
		t.Errorf("files holding the passphrase after switch_root: %q, want none", got["keyleak"])
	}
	if tc.wantDM != "" && !regexp.MustCompile(tc.wantDM).MatchString(got["dm 0"]) {
		t.Errorf("root reports dm-0 = %q, want a match for %q", got["dm 0"], tc.wantDM)
	}
	return got
}

// TestBootDM boots roots on LUKS2, LUKS1, LVM, LVM on LUKS and LUKS on LVM
// with the --generic image (which has the luks and lvm features), typing
// the passphrase at stage0's prompt on the serial console.
func TestBootDM(t *testing.T) {
	e := setup(t)
	kernel, initrd := buildImage(t, e, "--generic")
	disks := makeDMDisksFrom(t, e, dmCheckRoot(t))
	pass := func(v *vm) { typePassphrase(v, luksPassphrase) }
	cases := []dmCase{
		{"luks-passphrase", []string{disks.luks}, initrd, "root=UUID=" + rootUUID,
			pass, `unlocked .*name=luks-` + luksUUID, `^luks-` + luksUUID + ` ro=0 discard=0$`},
		{"luks-wrong-then-right", []string{disks.luks}, initrd, "rd.luks.name=" + luksUUID + "=cryptroot root=/dev/mapper/cryptroot",
			func(v *vm) {
				typePassphrase(v, wrongPassphrase)
				v.expect(`wrong passphrase for LUKS container UUID=`+luksUUID+`.*try 1 of 3`, time.Minute)
				time.Sleep(2 * time.Second)
				v.send(luksPassphrase + "\n")
			}, `found root device root=/dev/mapper/cryptroot .*DM=cryptroot TYPE=ext4`, `^cryptroot `},
		// Typed a key at a time while the kernel (ignore_loglevel) and
		// stage0 (rd.debug) print on the same console.
		{"luks-noisy-console", []string{disks.luks}, initrd, "root=UUID=" + rootUUID + " ignore_loglevel rd.debug",
			func(v *vm) {
				v.expect(`is locked; enter its passphrase`, bootTimeout)
				time.Sleep(2 * time.Second)
				for _, c := range luksPassphrase {
					v.send(string(c))
					time.Sleep(250 * time.Millisecond)
				}
				v.send("\n")
			}, `unlocked .*name=luks-` + luksUUID, `^luks-` + luksUUID + ` `},
		// The primary LUKS2 header wiped: blkid and cryptsetup use the
		// secondary copy.
		{"luks2-primary-header-wiped", []string{wipeLUKS2Primary(t, disks.luks)}, initrd, "root=UUID=" + rootUUID,
			pass, `unlocked .*name=luks-` + luksUUID, `^luks-` + luksUUID + ` `},
		{"luks1", []string{disks.luks1}, initrd, "root=UUID=" + rootUUID,
			pass, `unlocked .*name=luks-` + luks1UUID, `^luks-` + luks1UUID + ` `},
		{"lvm-path", []string{disks.lvm}, initrd, "root=/dev/vg/root", nil, `found root device root=/dev/vg/root .*DM=vg-root`, `^vg-root `},
		{"lvm-mapper-path", []string{disks.lvm}, initrd, "root=/dev/mapper/vg-root rd.lvm.vg=vg", nil, `found root device root=/dev/mapper/vg-root .*DM=vg-root`, `^vg-root `},
		{"lvm-uuid", []string{disks.lvm}, initrd, "root=UUID=" + rootUUID, nil, `found root device root=UUID=.*DM=vg-root`, `^vg-root `},
		{"lvm-on-luks", []string{disks.lvmLuks}, initrd, "root=/dev/mapper/vgc-root rd.luks.uuid=" + lvmLuksUUID,
			pass, `found root device root=/dev/mapper/vgc-root .*DM=vgc-root`, ""},
		{"luks-on-lvm", []string{disks.luksLVM}, initrd, "root=UUID=" + rootUUID,
			pass, `found root device root=UUID=.*DM=luks-` + luksLVMUUID, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bootDM(t, kernel, tc)
		})
	}
}

// TestBootDMKeys boots LUKS roots opened with keyfiles (in the image, named
// by rd.luks.key= or by a crypttab in the image; on a key device) and with
// rd.luks.options=, checking the mapping's name and flags in the root.
func TestBootDMKeys(t *testing.T) {
	e := setup(t)
	kernel, initrd := buildImage(t, e, "--generic")
	host := t.TempDir()
	keyFile := filepath.Join(host, "root.key")
	writeFile(t, keyFile, []byte(luksPassphrase), 0o600)
	_, keyInitrd := buildImage(t, e, "--generic", "--include", keyFile+":"+keyPath)
	crypttab := filepath.Join(host, "crypttab")
	writeFile(t, crypttab, []byte("# <target> <source> <keyfile> <options>\n"+
		"cryptroot UUID="+luksUUID+" "+keyPath+" luks,discard\n"+
		"other PARTLABEL=nowhere none luks\n"), 0o644)
	_, tabInitrd := buildImage(t, e, "--generic", "--include", keyFile+":"+keyPath, "--include", crypttab+":/etc/crypttab")
	disks := makeDMDisksFrom(t, e, dmCheckRoot(t))
	keyDisk := makeVfat(t, "keydisk", 40, map[string]string{"root.key": keyFile})
	pass := func(v *vm) { typePassphrase(v, luksPassphrase) }

	cases := []dmCase{
		{"keyfile", []string{disks.luks}, keyInitrd, "root=UUID=" + rootUUID + " rd.luks.uuid=luks-" + luksUUID + " rd.luks.key=" + keyPath,
			nil, `unlocking with keyfile`, `^luks-` + luksUUID + ` ro=0 discard=0$`},
		{"crypttab", []string{disks.luks}, tabInitrd, "root=/dev/mapper/cryptroot",
			nil, `unlocking with keyfile .*from="/etc/crypttab line 2"`, `^cryptroot ro=0 discard=[1-9]`},
		{"crypttab-overridden", []string{disks.luks}, tabInitrd,
			"root=UUID=" + rootUUID + " rd.luks.name=" + luksUUID + "=fromcmdline rd.luks.options=" + luksUUID + "=readonly",
			nil, `unlocking with keyfile .*from="/etc/crypttab line 2" name=fromcmdline`, `^fromcmdline ro=1 discard=0$`},
		{"crypttab-ignored", []string{disks.luks}, tabInitrd, "root=UUID=" + rootUUID + " rd.luks.crypttab=0",
			pass, `unlocked .*name=luks-` + luksUUID, `^luks-` + luksUUID + ` ro=0 discard=0$`},
		{"key-device", []string{disks.luks, keyDisk}, initrd, "root=UUID=" + rootUUID + " rd.luks.key=/root.key:LABEL=keydisk",
			nil, `unlocking with keyfile .*keyfile=/root.key:LABEL=keydisk`, `^luks-` + luksUUID + ` `},
		{"key-device-systemd-form", []string{disks.luks, keyDisk}, initrd, "root=UUID=" + rootUUID + " rd.luks.key=" + luksUUID + "=/root.key:LABEL=keydisk",
			nil, `unlocking with keyfile .*keyfile=/root.key:LABEL=keydisk`, `^luks-` + luksUUID + ` `},
		{"key-device-missing", []string{disks.luks}, initrd, "root=UUID=" + rootUUID + " rd.luks.key=/root.key:LABEL=keydisk rd.luks.key.tout=3",
			func(v *vm) {
				v.expect(`key device not found: LABEL=keydisk did not appear within 3s`, bootTimeout)
				typePassphrase(v, luksPassphrase)
			}, `unlocked .*name=luks-` + luksUUID, `^luks-` + luksUUID + ` `},
		{"options-discard", []string{disks.luks}, initrd, "root=UUID=" + rootUUID + " rd.luks.options=discard,frobnicate",
			func(v *vm) {
				v.expect(`rd\.luks\.options=discard,frobnicate: options not supported, ignored: frobnicate`, bootTimeout)
				typePassphrase(v, luksPassphrase)
			}, `unlocked .*name=luks-` + luksUUID, `^luks-` + luksUUID + ` ro=0 discard=[1-9]`},
		{"options-uuid", []string{disks.luks}, initrd, "root=UUID=" + rootUUID + " rd.luks.options=" + luksUUID + "=readonly,tries=1",
			func(v *vm) {
				v.expect(`is locked; enter its passphrase \(1 tries\)`, bootTimeout)
				time.Sleep(2 * time.Second)
				v.send(luksPassphrase + "\n")
			}, `unlocked .*name=luks-` + luksUUID, `^luks-` + luksUUID + ` ro=1 discard=0$`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := bootDM(t, kernel, tc)
			// The key device was unmounted before the switch: the only
			// block device mounted is the root.
			if m := strings.Fields(got["mounts"]); len(m) != 1 || !isDMSource(m[0]) {
				t.Errorf("block devices mounted in the root = %q, want only the root's dm device", got["mounts"])
			}
		})
	}
}

// TestBootDMBadInput checks that each broken setup ends in a message
// naming the thing at fault and an emergency shell that answers.
func TestBootDMBadInput(t *testing.T) {
	e := setup(t)
	kernel, initrd := buildImage(t, e, "--generic")
	disks := makeDMDisksFrom(t, e, dmCheckRoot(t))
	const unknownUUID = "0badc0de-0000-4000-8000-000000000000"
	cases := []struct {
		name    string
		disk    string
		cmdline string
		want    string // the message, before the emergency shell
	}{
		{"missing-keyfile", disks.luks, "root=UUID=" + rootUUID + " rd.luks.key=/etc/no-such.key",
			`rd\.luks\.key=/etc/no-such\.key: cannot read the keyfile /etc/no-such\.key in the image`},
		{"unknown-luks-uuid", disks.luks, "root=UUID=" + rootUUID + " rd.luks.uuid=" + unknownUUID + " rd.timeout=8",
			`timed out waiting for the root device UUID=` + rootUUID + ` after 8s; LUKS container rd\.luks\.uuid=` + unknownUUID + ` not found`},
		{"damaged-header", damageLUKS2Header(t, disks.luks), "root=UUID=" + rootUUID,
			`LUKS header unreadable: cryptsetup cannot read the header of LUKS container UUID=` + luksUUID + ` on /dev/vda`},
		{"missing-lv", disks.lvm, "root=/dev/vg/nope",
			`root=/dev/vg/nope: the volume group vg has no logical volume nope \(logical volumes found: vg/root\)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, disks: []string{tc.disk}, cmdline: tc.cmdline})
			v.expect(tc.want, bootTimeout)
			v.expect(`(?i)emergency shell`, time.Minute)
			time.Sleep(2 * time.Second)
			v.send("echo SHELL-$((40+2))\n")
			v.expect(`SHELL-42`, time.Minute)
			if strings.Contains(v.tail(1<<20), "enter its passphrase") {
				t.Errorf("stage0 asked for a passphrase; want the failure reported first")
			}
		})
	}
}

// wipeLUKS2Primary returns a copy of a LUKS2 disk whose primary binary
// header (its first 4 KiB) is zeroed; the secondary header is intact.
func wipeLUKS2Primary(t *testing.T, disk string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "wiped.img")
	copySparse(t, disk, p)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, 4096), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// damageLUKS2Header returns a copy of a LUKS2 disk whose two binary headers
// (at 0 and at the header size) have their checksums overwritten: the
// magic and UUID still say LUKS2, but cryptsetup cannot load either copy,
// as after a partial overwrite of the header area.
func damageLUKS2Header(t *testing.T, disk string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "damaged.img")
	copySparse(t, disk, p)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr := make([]byte, 512)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		t.Fatal(err)
	}
	h, err := luks.ParseHeader(hdr)
	if err != nil || h.Secondary || h.Version != 2 {
		t.Fatalf("%s: no LUKS2 header at 0 (%v)", disk, err)
	}
	size := int64(h.Size)
	junk := []byte(strings.Repeat("\xde\xad", 32))
	for _, off := range []int64{0, size} {
		// The checksum field: 64 bytes at 448 of each binary header.
		if _, err := f.WriteAt(junk, off+448); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// dmCheckScript is run by the device-mapper fixture root's init: it reports
// any file on the new root or in /run holding the passphrase (the keyfile
// holds the same bytes; the script builds the string so that it does not
// contain it itself), the block devices mounted, and for each
// device-mapper device its name, whether it is read-only and its discard
// limit (0 when discards are not passed down).
const dmCheckScript = `p=pkginitrd; p=$p-test
leaks=$($bb find / /run -xdev -type f 2>/dev/null | $bb xargs $bb grep -lF "$p" 2>/dev/null | $bb tr '\n' ' ')
$bb echo "` + marker + ` keyleak=${leaks:-none}"
$bb echo "` + marker + ` mounts=$($bb awk '$1 ~ /^\/dev\// {print $1}' /proc/mounts | $bb tr '\n' ' ')"
for d in /sys/block/dm-*; do
  [ -e $d/dm/name ] || continue
  n=${d##*/dm-}
  $bb echo "` + marker + ` dm $n=$($bb cat $d/dm/name) ro=$($bb cat $d/ro) discard=$($bb cat $d/queue/discard_max_bytes)"
done
`

func dmCheckRoot(t *testing.T) string {
	t.Helper()
	return fixtureRootWith(t, dmCheckScript)
}
