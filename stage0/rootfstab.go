package stage0

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/fstab"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/dm"
	"github.com/pkginitrd/pkginitrd/stage0/mount"
)

// rootFstab is the real root's fstab, read once the root is mounted.
const rootFstab = newRoot + "/etc/fstab"

// fstabStep does what the real root's /etc/fstab asks of an initramfs:
// the root's mount options when the command line gives none, and /usr and
// the x-initrd.mount entries mounted before switch_root (systemd requires
// a separate /usr to be mounted by then). A /usr from mount.usr= (usr.go)
// replaces the fstab's and is mounted even with rd.fstab=0.
type fstabStep struct {
	fstab bool // read the root's fstab (rd.fstab=0: false)
	usr   usrSettings
}

func (s fstabStep) String() string {
	usr := ""
	if e := s.usr.entry(); e != nil {
		usr = fmt.Sprintf("/usr from %s (mount.usr=, type %s", e.Spec, e.Type)
		if e.Options != "" {
			usr += ", flags " + e.Options
		}
		usr += ")"
	}
	switch {
	case !s.fstab && usr != "":
		return "mount " + usr
	case usr != "":
		return "read the root's /etc/fstab: root options, mount " + usr + " and x-initrd.mount entries (rd.fstab=0 skips the fstab)"
	}
	return "read the root's /etc/fstab: root options, mount /usr and x-initrd.mount entries (rd.fstab=0 skips)"
}

func (s fstabStep) Run(ctx context.Context, b *boot) error {
	for _, w := range s.usr.Warnings {
		b.log.Warn("kernel command line: /usr option ignored", "problem", w)
	}
	var entries []fstab.Entry
	if s.fstab {
		entries = b.readRootFstab()
		if e := fstab.Find(entries, "/"); e != nil {
			if err := b.rootOptions(*e); err != nil {
				return err
			}
		}
	}
	mounts := initrdMounts(entries, s.usr.entry())
	if len(mounts) == 0 {
		return nil
	}
	tab := b.rootCrypttab()
	for _, e := range mounts {
		if err := b.mountEntry(ctx, e, tab); err != nil {
			return fmt.Errorf("mount %s (%s): %w", e.File, origin(e), err)
		}
	}
	return nil
}

// readRootFstab reads the root's fstab; a missing or unreadable one is
// an empty one.
func (b *boot) readRootFstab() []fstab.Entry {
	data, err := b.sys.ReadFile(rootFstab)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		b.log.Debug("the root has no /etc/fstab", "path", rootFstab)
		return nil
	case err != nil:
		b.log.Warn("cannot read the root's fstab; not using it", "path", rootFstab, "err", err)
		return nil
	}
	entries, warns, err := fstab.Parse(bytes.NewReader(data))
	for _, w := range warns {
		b.log.Warn("the root's fstab: line ignored", "problem", w)
	}
	if err != nil {
		b.log.Warn("cannot read the root's fstab; not using it", "err", err)
		return nil
	}
	return entries
}

// initrdMounts returns the entries the initramfs mounts, parents first
// (/usr before /usr/local): the fstab's /usr and x-initrd.mount entries,
// with usr (from the command line), when set, instead of the fstab's /usr.
func initrdMounts(entries []fstab.Entry, usr *fstab.Entry) []fstab.Entry {
	var mounts []fstab.Entry
	for _, e := range entries {
		if e.InitrdMount() && (usr == nil || e.File != "/usr") {
			mounts = append(mounts, e)
		}
	}
	if usr != nil {
		mounts = append(mounts, *usr)
	}
	slices.SortStableFunc(mounts, func(a, b fstab.Entry) int {
		return strings.Count(a.File, "/") - strings.Count(b.File, "/")
	})
	return mounts
}

// origin says where an entry comes from, for messages.
func origin(e fstab.Entry) string {
	if e.Line == 0 {
		return "mount.usr=" + e.Spec + " on the kernel command line"
	}
	return fmt.Sprintf("line %d of the root's /etc/fstab: %s", e.Line, e)
}

// rootOptions mounts the root again with the options of its fstab entry
// when neither rootflags= nor the image gave any. ro/rw stay as the
// command line says (ro by default: systemd remounts it as fstab says).
func (b *boot) rootOptions(e fstab.Entry) error {
	if b.set.RootFlags != "" || b.root == nil {
		return nil // rootflags= wins; or the root was mounted by hand
	}
	opts := withoutMode(e.Options)
	if flags, data := mount.ParseOptions(opts); flags == 0 && data == "" {
		return nil
	}
	fsType, err := b.rootType(b.set)
	if err != nil {
		return err
	}
	src := b.source(b.waiting, b.root.Node)
	m := mount.Root(src, newRoot, fsType, opts, b.set.RootMode)
	b.log.Info("mounting the root again with the options of its fstab entry (rootflags= overrides)", "mount", m.String())
	if err := b.sys.Unmount(newRoot, 0); err != nil {
		b.log.Warn("cannot unmount the root to apply its fstab options; keeping it as mounted", "err", err)
		return nil
	}
	if err := b.sys.Mount(m); err != nil {
		b.log.Warn("the root's fstab options do not mount it; mounting it without them", "options", opts, "err", err)
		if err := b.sys.Mount(mount.Root(src, newRoot, fsType, "", b.set.RootMode)); err != nil {
			return fmt.Errorf("mount the root again: %w", err)
		}
	}
	return nil
}

// withoutMode drops ro and rw from an option string.
func withoutMode(opts string) string {
	var keep []string
	for _, o := range strings.Split(opts, ",") {
		if o != "ro" && o != "rw" && o != "" {
			keep = append(keep, o)
		}
	}
	return strings.Join(keep, ",")
}

// mountEntry mounts one fstab entry under the new root: its device waited
// for (a LUKS container opened, a logical volume activated: usr.go),
// checked when fstab gives it a pass number, and mounted with the entry's
// options. /usr is mounted read-only like the root unless rw is on the
// command line (or, from mount.usr=, in mount.usrflags=):
// systemd-remount-fs remounts both as fstab says.
func (b *boot) mountEntry(ctx context.Context, e fstab.Entry, tab []dm.CrypttabEntry) error {
	target := newRoot + e.File
	if mp, err := b.sys.IsMountPoint(target); err == nil && mp {
		b.log.Info("already mounted", "target", target)
		return nil
	}
	src, fsType := e.Spec, e.Type
	if ref, err := cmdline.ParseDeviceRef(e.Spec); err == nil && ref.Kind != cmdline.None && ref.Kind != cmdline.Live &&
		(ref.Kind != cmdline.Path || strings.HasPrefix(ref.Value, "/dev/")) {
		d, err := b.waitMountDevice(ctx, e, &ref, tab)
		if err != nil {
			return err
		}
		src = b.source(ref, d.Node)
		if (fsType == "auto" || strings.Contains(fsType, ",")) && d.Info != nil {
			fsType = d.Info.Type
		}
		if e.Pass > 0 && b.set.FsckMode != "skip" {
			if _, err := b.checkFS(ctx, d, fsType, e.File, b.set.FsckMode, b.set.FsckRepair); err != nil {
				return err
			}
		}
	}
	if err := b.loader.Load(ctx, "fs-"+fsType); err != nil {
		b.log.Debug("filesystem module: not all of it loaded (it may be built in)", "type", fsType, "err", err)
	}
	var m mount.Mount
	switch {
	case e.File == "/usr" && e.Line == 0:
		m = mount.Root(src, target, fsType, e.Options, usrMode(e.Options, b.set.RootMode))
	case e.File == "/usr":
		m = mount.Root(src, target, fsType, withoutMode(e.Options), b.set.RootMode)
	default:
		flags, data := mount.ParseOptions(e.Options)
		m = mount.Mount{Source: src, Target: target, FSType: fsType, Flags: flags, Data: data}
	}
	b.log.Info("mounting what the real root needs before switch_root", "from", origin(e), "mount", m.String())
	return b.sys.Mount(m)
}

var _ step = fstabStep{}
