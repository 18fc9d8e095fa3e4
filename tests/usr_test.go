package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// plainRootUUID is the filesystem of TestBootUsrLUKS's plain root.
const plainRootUUID = "5e6f7081-92a3-4b4c-8d5e-6f708192a3b4"

// usrCheckScript reports the root's /usr mount, whether it holds the
// tree of the LUKS fixture's filesystem, and the device-mapper names.
const usrCheckScript = `$bb echo "` + marker + ` usr=$($bb awk '$2=="/usr"{print $1" "$3" "$4}' /proc/mounts | $bb tail -n1)"
[ -x /usr/sbin/init ] && $bb echo "` + marker + ` usrtree=yes"
for d in /sys/block/dm-*; do
  [ -e $d/dm/name ] && $bb echo "` + marker + ` dm ${d##*/dm-}=$($bb cat $d/dm/name)"
done
`

// TestBootUsrLUKS boots a plain root whose /usr is the filesystem inside
// the device-mapper fixtures' LUKS2 disk: named in the root's fstab as the
// mapping of the root's crypttab, whose keyfile lives on the root (stage0
// opens it under that name, no passphrase); and given by mount.usr= as
// the filesystem's UUID, the container named by rd.luks.name= and opened
// with the passphrase typed.
func TestBootUsrLUKS(t *testing.T) {
	e := setup(t)
	kernel, initrd := buildImage(t, e, "--generic")
	disks := makeDMDisksFrom(t, e, dmCheckRoot(t))
	root := fixtureRootWith(t, usrCheckScript)
	for _, d := range []string{"usr", "etc/keys"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "etc/fstab"), []byte("UUID="+plainRootUUID+" / ext4 defaults 0 1\n"+
		"/dev/mapper/usr_crypt /usr ext4 defaults 0 0\n"), 0o644)
	writeFile(t, filepath.Join(root, "etc/crypttab"), []byte("usr_crypt UUID="+luksUUID+" /etc/keys/usr.key luks\n"), 0o644)
	writeFile(t, filepath.Join(root, "etc/keys/usr.key"), []byte(luksPassphrase), 0o600)
	rootImg := makeFS(t, root, fsSpec{"ext4", plainRootUUID, "plainroot", 16})

	for _, tc := range []struct {
		name, cmdline string
		typing        func(v *vm)
		wantLog       string
		wantUsr       string // the usr report's device ("dm" = any device-mapper path)
	}{
		{"fstab-crypttab-keyfile", "root=UUID=" + plainRootUUID, nil,
			`unlocking with keyfile .*keyfile=/sysroot/etc/keys/usr.key .*name=usr_crypt`, "/dev/mapper/usr_crypt"},
		{"mount.usr-passphrase", "root=UUID=" + plainRootUUID + " rd.luks.crypttab=0 rd.luks.name=" + luksUUID + "=usr_crypt mount.usr=UUID=" + rootUUID,
			func(v *vm) { typePassphrase(v, luksPassphrase) }, `unlocked .*name=usr_crypt`, "dm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disk := filepath.Join(t.TempDir(), "root.img")
			copySparse(t, rootImg, disk)
			v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, cmdline: tc.cmdline, extraArgs: discardDrives([]string{disk, disks.luks})})
			if tc.typing != nil {
				tc.typing(v)
			}
			v.expect(tc.wantLog, bootTimeout)
			got := expectRoot(t, v)
			if tc.typing == nil && strings.Contains(v.tail(1<<20), "enter its passphrase") {
				t.Errorf("stage0 asked for a passphrase; want the keyfile from the root")
			}
			f := strings.Fields(got["usr"])
			if len(f) != 3 || f[1] != "ext4" || !strings.HasPrefix(f[2], "ro") ||
				(tc.wantUsr == "dm" && !isDMSource(f[0])) || (tc.wantUsr != "dm" && f[0] != tc.wantUsr) {
				t.Errorf("root reports /usr = %q, want %s ext4 ro", got["usr"], tc.wantUsr)
			}
			if got["usrtree"] != "yes" || got["dm 0"] != "usr_crypt" {
				t.Errorf("root reports usrtree=%q dm-0=%q, want yes and usr_crypt", got["usrtree"], got["dm 0"])
			}
			if r := strings.Fields(got["root"]); len(r) == 0 || isDMSource(r[0]) {
				t.Errorf("root mount = %q, want the plain disk", got["root"])
			}
		})
	}
}
