package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The installed system of the systemd tests: Debian's installer layout for
// "guided, encrypted LVM" (GPT, ext4 /boot, LUKS2 holding the volume group
// sysVG with root and swap_1, optionally usr).
const (
	sysLUKSUUID = "5e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b"
	sysBootUUID = "b0070b00-1111-4222-8333-444455556666"
	sysVG       = "pkg-vg" // a dash, as the installer's "<hostname>-vg": dm names double it
	sysCrypt    = "vda2_crypt"
)

// systemdRootPackages are installed on top of debootstrap's minbase.
func systemdRootPackages() []string {
	return []string{"systemd-sysv", "udev", "dbus", "cryptsetup", "lvm2", "e2fsprogs", "kmod"}
}

// reportScript runs once the system is up: it prints the system state,
// failed units, failed or timed-out jobs from the journal, swap and
// mounts to the console, then powers off through systemd.
const reportScript = `#!/bin/sh
exec >/dev/console 2>&1
m=` + marker + `
state=$(systemctl is-system-running --wait)
echo "$m state=$state"
echo "$m uptime=$(cut -d' ' -f1 /proc/uptime)"
systemctl --failed --no-legend --plain | while read -r l; do echo "$m failed-unit=$l"; done
journalctl -b --no-pager -o cat | grep -iE 'timed out|dependency failed|failed with result|failed to start' | while read -r l; do echo "$m journal=$l"; done
swapon --noheadings --show=NAME | while read -r l; do echo "$m swap=$l"; done
echo "$m root=$(findmnt -no SOURCE,FSTYPE,OPTIONS /)"
echo "$m usr=$(findmnt -no SOURCE,FSTYPE,OPTIONS /usr)"
echo "$m boot=$(findmnt -no FSTYPE /boot)"
echo "$m fsck-root=$(systemctl show -p ActiveState --value systemd-fsck-root.service)"
echo "$m cryptsetup=$(systemctl show -p ActiveState --value systemd-cryptsetup@` + sysCrypt + `.service)"
echo "$m analyze=$(systemd-analyze time 2>/dev/null | head -n1)"
echo "$m report-done"
systemctl poweroff
`

const reportUnit = `[Unit]
Description=pkginitrd test report

[Service]
Type=simple
ExecStart=/usr/local/sbin/pkgtest-report
StandardOutput=null

[Install]
WantedBy=multi-user.target
`

// installedRoot copies the debootstrap root and adds what the installer
// and the test add: fstab and crypttab as the installer writes them, a
// hostname, and the report unit.
func installedRoot(t *testing.T, base string, usr bool) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	run(t, "cp", "-a", base, root)
	vg := strings.ReplaceAll(sysVG, "-", "--")
	fstab := "# /etc/fstab: static file system information.\n#\n" +
		"# <file system> <mount point>   <type>  <options>       <dump>  <pass>\n" +
		"/dev/mapper/" + vg + "-root /               ext4    errors=remount-ro 0       1\n" +
		"# /boot was on /dev/vda1 during installation\n" +
		"UUID=" + sysBootUUID + " /boot           ext4    defaults        0       2\n"
	if usr {
		fstab += "/dev/mapper/" + vg + "-usr /usr            ext4    defaults        0       2\n"
	}
	fstab += "/dev/mapper/" + vg + "-swap_1 none            swap    sw              0       0\n"
	writeFile(t, filepath.Join(root, "etc", "fstab"), []byte(fstab), 0o644)
	writeFile(t, filepath.Join(root, "etc", "crypttab"), []byte(sysCrypt+" UUID="+sysLUKSUUID+" none luks,discard\n"), 0o644)
	writeFile(t, filepath.Join(root, "etc", "hostname"), []byte("pkgtest\n"), 0o644)
	writeFile(t, filepath.Join(root, "usr", "local", "sbin", "pkgtest-report"), []byte(reportScript), 0o755)
	writeFile(t, filepath.Join(root, "etc", "systemd", "system", "pkgtest-report.service"), []byte(reportUnit), 0o644)
	wants := filepath.Join(root, "etc", "systemd", "system", "multi-user.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/systemd/system/pkgtest-report.service", filepath.Join(wants, "pkgtest-report.service")); err != nil {
		t.Fatal(err)
	}
	return root
}

// imageFor makes an ext4 image of dir sized for its contents.
func imageFor(t *testing.T, dir, label, uuid string) string {
	t.Helper()
	kib, err := strconv.ParseInt(strings.Fields(run(t, "du", "-sk", "--apparent-size", dir))[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return makeFS(t, dir, fsSpec{"ext4", uuid, label, (kib*13/10)>>10 + 64})
}

// systemdDisk returns a fresh copy of the installed system's disk (made
// once per root, layout and kernel, and cached): the root formatted in a
// helper VM as the installer would, with /usr on its own logical volume
// when usr is set.
func systemdDisk(t *testing.T, e *env, usr bool) string {
	t.Helper()
	root := installedRoot(t, debootstrapRoot(t, e, systemdRootPackages()...), usr)
	kernel, _ := buildImage(t, e, "--generic")
	h := sha256.New()
	fmt.Fprintf(h, "systemd-disk v1 usr=%v\nroot %s\nkernel %s\n", usr, treeHash(t, root), fileHash(t, kernel))
	dir := filepath.Join(fixtureCacheDir(e), "systemd-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(dir, "done")); err != nil {
		buildSystemdDisk(t, e, root, usr, dir)
		pruneFixtures(t, filepath.Dir(dir), "systemd-", 14*24*time.Hour)
	} else {
		t.Logf("installed-system disk from the cache %s", dir)
		now := time.Now()
		os.Chtimes(filepath.Join(dir, "done"), now, now)
	}
	disk := filepath.Join(t.TempDir(), "disk.img")
	copySparse(t, filepath.Join(dir, "disk.img"), disk)
	return disk
}

// buildSystemdDisk lays the disk out: the GPT, /boot and the empty LUKS
// partition on the host, the LUKS container, volume group, swap and the
// copy of the filesystems in a helper VM (the host has no device-mapper).
func buildSystemdDisk(t *testing.T, e *env, root string, usr bool, dir string) {
	t.Helper()
	start := time.Now()
	empty := t.TempDir()
	boot := makeFS(t, empty, fsSpec{"ext4", sysBootUUID, "boot", 64})
	rootDir := root
	var usrImg string
	if usr {
		usrImg = imageFor(t, filepath.Join(root, "usr"), "usr", "0a0b0c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0e")
		rootDir = filepath.Join(t.TempDir(), "root")
		run(t, "cp", "-a", root, rootDir)
		if err := os.RemoveAll(filepath.Join(rootDir, "usr")); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(rootDir, "usr"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rootImg := imageFor(t, rootDir, "root", "7c0f7e5e-3a5b-4c6d-8e9f-0a1b2c3d4e5f")
	mb := func(p string) int64 {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return (info.Size()>>20 + 7) &^ 3
	}
	lvs := fmt.Sprintf(`lvm lvcreate --config "$C" -Wn -Zn -y -n root -L %dm %s`, mb(rootImg), sysVG)
	copyIn := `busybox dd if=/dev/vdb of=/dev/` + sysVG + `/root bs=1M 2>/dev/null`
	cryptMB := mb(rootImg) + 64 + 48
	disks := []string{"", rootImg}
	if usr {
		lvs += fmt.Sprintf(` && lvm lvcreate --config "$C" -Wn -Zn -y -n usr -L %dm %s`, mb(usrImg), sysVG)
		copyIn += ` && busybox dd if=/dev/vdc of=/dev/` + sysVG + `/usr bs=1M 2>/dev/null`
		cryptMB += mb(usrImg)
		disks = append(disks, usrImg)
	}
	disks[0] = makeDisk(t, partSpec{label: "boot", image: boot}, partSpec{label: "crypt", sizeMB: cryptMB})
	v := dmShell(t, e, disks...)
	shellScript(t, v, "formatting the installed system's disk", 10*time.Minute,
		`echo -n `+luksPassphrase+` | cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --disable-locks --uuid `+sysLUKSUUID+` --key-file=- /dev/vda2`,
		`echo -n `+luksPassphrase+` | cryptsetup open --disable-locks --key-file=- /dev/vda2 `+sysCrypt,
		`lvm pvcreate --config "$C" /dev/mapper/`+sysCrypt, `lvm vgcreate --config "$C" `+sysVG+` /dev/mapper/`+sysCrypt,
		lvs, `lvm lvcreate --config "$C" -Wn -Zn -y -n swap_1 -L 64m `+sysVG, `busybox mkswap /dev/`+sysVG+`/swap_1`,
		copyIn, `lvm vgchange --config "$C" -an `+sysVG, `cryptsetup close `+sysCrypt, `busybox sync`)
	powerOffShell(t, v)

	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-systemd-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	os.Chmod(tmp, 0o755)
	copySparse(t, disks[0], filepath.Join(tmp, "disk.img"))
	writeFile(t, filepath.Join(tmp, "done"), nil, 0o644)
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "done")); serr != nil {
			t.Fatalf("store the disk in %s: %v", dir, err)
		}
	}
	t.Logf("installed-system disk (usr=%v) made in %s and stored in %s", usr, time.Since(start).Round(time.Second), dir)
}
