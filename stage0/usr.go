package stage0

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/fstab"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/dm"
)

// usrSettings is the /usr of systemd's mount.usr=, mount.usrfstype= and
// mount.usrflags= (systemd-fstab-generator(8)): mounted on /sysroot/usr
// instead of the root fstab's /usr entry, even with rd.fstab=0.
type usrSettings struct {
	Device   cmdline.DeviceRef // Kind None: no /usr from the command line
	FSType   string            // "" = probe
	Flags    string
	Warnings []string // options ignored
}

// usrFrom applies systemd's defaults: when any of the three options is
// given, the device defaults to the root's (root=, or the image's: a /usr
// that differs only in options, such as a btrfs subvolume), the type to
// rootfstype= and the flags to rootflags=. mount.usr=fstab keeps the
// fstab's /usr.
func usrFrom(c *cmdline.CmdLine, root cmdline.DeviceRef, rootFSType, rootFlags string) usrSettings {
	if c.UsrFstab || !usrGiven(c) {
		return usrSettings{}
	}
	u := usrSettings{Device: c.Usr, FSType: c.UsrFSType, Flags: c.UsrFlags}
	if u.Device.Kind == cmdline.None {
		u.Device = root
	}
	switch u.Device.Kind {
	case cmdline.None, cmdline.Live:
		u.Warnings = append(u.Warnings, "mount.usrfstype=/mount.usrflags= without mount.usr= name the root's device, and the root is "+
			root.String()+"; using the root's fstab for /usr")
		return usrSettings{Warnings: u.Warnings}
	}
	if u.FSType == "" {
		u.FSType = rootFSType
	}
	if u.FSType == "auto" {
		u.FSType = ""
	}
	if u.Flags == "" {
		u.Flags = rootFlags
	}
	return u
}

// usrGiven reports whether the command line gives any of mount.usr=,
// mount.usrfstype= and mount.usrflags=.
func usrGiven(c *cmdline.CmdLine) bool {
	return c.Usr.Kind != cmdline.None || c.UsrFSType != "" || c.UsrFlags != ""
}

// entry is the /usr as an fstab entry from the command line (Line 0).
// systemd checks a /usr given as a device (passno 1).
func (u usrSettings) entry() *fstab.Entry {
	if u.Device.Kind == cmdline.None {
		return nil
	}
	fsType := u.FSType
	if fsType == "" {
		fsType = "auto"
	}
	return &fstab.Entry{Spec: u.Device.String(), File: "/usr", Type: fsType, Options: u.Flags, Pass: 1}
}

// usrMode is the ro/rw of a /usr mount: the command line's (ro by
// default), unless the /usr options say ro or rw themselves, which then
// win (systemd-fstab-generator adds the root's ro/rw only when the options
// have neither).
func usrMode(opts, rootMode string) string {
	for _, o := range strings.Split(opts, ",") {
		if o == "ro" || o == "rw" {
			return ""
		}
	}
	return rootMode
}

// rootCrypttab reads the real root's /etc/crypttab: the names, keyfiles
// and options of the LUKS containers its /usr and x-initrd.mount entries
// may sit on. Its keyfiles without a key device are files of the root, so
// they are read under /sysroot (failing that, the passphrase is asked).
// rd.luks.crypttab=0 leaves it unread.
func (b *boot) rootCrypttab() []dm.CrypttabEntry {
	if !b.set.DM.UseCrypttab {
		return nil
	}
	path := newRoot + dm.CrypttabPath
	data, err := b.sys.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		b.log.Warn("cannot read the root's crypttab; LUKS containers for /usr are opened by the image's settings alone", "path", path, "err", err)
		return nil
	}
	entries, warns := dm.ParseCrypttab(bytes.NewReader(data))
	for _, w := range warns {
		b.log.Debug("the root's crypttab: entry or option ignored here", "problem", w)
	}
	for i := range entries {
		if k := entries[i].Key; k != nil {
			root := *k
			root.Origin = newRoot + root.Origin
			if root.Device.Kind == cmdline.None {
				root.Path = newRoot + root.Path
			}
			entries[i].Key = &root
		}
	}
	return entries
}

// waitMountDevice waits for the device of an fstab entry (or of
// mount.usr=) for rd.timeout=, opening the LUKS container it sits on
// (mountActivation). ref becomes the container's mapping when mount.usr=
// names a LUKS container itself.
func (b *boot) waitMountDevice(ctx context.Context, e fstab.Entry, ref *cmdline.DeviceRef, tab []dm.CrypttabEntry) (*device.Device, error) {
	a := b.mountActivation(e, *ref, tab)
	want := *ref
	d, err := b.waitOther(ctx, ref, b.set.Timeout, a, "the device of "+e.File, "rd.timeout=")
	var missing *notThereError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("%w%s", err, mountHint(a, want))
	}
	return d, err
}

// mountActivation is what the wait for the device of e may open:
//
//   - /dev/mapper/NAME: first the LUKS container that opens as NAME, the
//     name the root's crypttab, the image's crypttab or rd.luks.name=
//     gives it (or luks-UUID, rd.luks.uuid='s);
//   - an fstab device (UUID= of the filesystem inside, a logical volume
//     on it), when still missing: the containers the root's crypttab
//     lists without noauto, and those rd.luks.uuid= names; never the
//     other LUKS containers on the machine;
//   - mount.usr=: like root=, the containers rd.luks.uuid= asks for
//     (every one when it names none), and a LUKS container it names
//     itself;
//
// and the logical volume ref names, once (rd.lvm.lv= may name only the
// root's). The names and keys of the root's crypttab come first.
func (b *boot) mountActivation(e fstab.Entry, ref cmdline.DeviceRef, tab []dm.CrypttabEntry) *activation {
	c := b.set.DM
	c.Crypttab = append(append([]dm.CrypttabEntry(nil), tab...), c.Crypttab...)
	a := &activation{conf: c}
	if e.Line == 0 {
		a.open, a.intoContainer, a.what = b.rootActivation("mount.usr=").open, true, "mount.usr="
	} else {
		a.open = func(d *device.Device, u dm.Unlock) bool {
			return u.Entry != nil && !u.Entry.Options.NoAuto || len(c.LUKSUUIDs) > 0 && c.WantLUKS(d.Info.UUID)
		}
	}
	if ref.Kind == cmdline.Path {
		if name, ok := strings.CutPrefix(ref.Value, "/dev/mapper/"); ok {
			a.byName = func(_ *device.Device, u dm.Unlock) bool { return u.Name == name }
		}
		if vg, lv, ok := dm.LogicalVolume(ref.Value); ok {
			a.lv = vg + "/" + lv
		}
	}
	return a
}

// mountHint explains a missing /dev/mapper/NAME that a crypttab entry
// names when LUKS unlocking is off.
func mountHint(a *activation, ref cmdline.DeviceRef) string {
	name, ok := strings.CutPrefix(ref.Value, "/dev/mapper/")
	if ref.Kind != cmdline.Path || !ok || a.conf.LUKS {
		return ""
	}
	for _, e := range a.conf.Crypttab {
		if e.Name == name {
			return fmt.Sprintf("; it is the LUKS mapping of %s (crypttab line %d), and LUKS unlocking is off (rd.luks=0, or the image has no luks feature)", e.Device, e.Line)
		}
	}
	return ""
}
