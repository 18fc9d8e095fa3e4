package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pkginitrd/pkginitrd/internal/blkid"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
	"github.com/pkginitrd/pkginitrd/stage0/mount"
)

// Fixed places of the live root (see the package comment).
const (
	MediumDir  = "/run/initramfs/live"
	RAMCopy    = "/run/initramfs/squashed.img"
	LowerDir   = "/run/rootfsbase"
	TmpfsDir   = "/run/initramfs/overlay"
	PersistDir = "/run/initramfs/overlayfs"
)

// Setup builds overlay roots.
type Setup struct {
	Sys machine.Machine
	Log *slog.Logger
	// Load loads kernel modules by name or alias (best effort: built-in
	// ones fail harmlessly, the mount that needs them reports).
	Load func(ctx context.Context, names ...string)
	// Wait waits for the device ref names (the persistent overlay).
	Wait func(ctx context.Context, ref cmdline.DeviceRef) (*device.Device, error)
}

// Live mounts the live root of p on target: the medium, the image on it
// (or its RAM copy) as the lower layer, the upper layer, and the overlay.
// Steps already done (a retry after the emergency shell) are skipped.
func (s *Setup) Live(ctx context.Context, p Plan, medium *device.Device, target string) error {
	if mp, _ := s.Sys.IsMountPoint(target); mp {
		s.Log.Info("the root is already mounted; using it", "target", target)
		return nil
	}
	s.Load(ctx, "loop", "squashfs", "overlay")
	if medium == nil {
		return fmt.Errorf("live medium %s: not found", p.Medium)
	}
	if medium.Info == nil {
		if medium.Err != nil {
			return fmt.Errorf("live medium %s (%s): %w", medium.Node, p.Medium, medium.Err)
		}
		return fmt.Errorf("live medium %s (%s): no filesystem recognised on it", medium.Node, p.Medium)
	}
	upperDev, err := s.upperDevice(ctx, p)
	if err != nil {
		return err
	}
	if mp, _ := s.Sys.IsMountPoint(LowerDir); !mp {
		if err := s.mountLower(ctx, p, medium, upperDev); err != nil {
			return err
		}
	}
	upper, work, err := s.mountUpper(ctx, p, medium, upperDev)
	if err != nil {
		return err
	}
	return s.mountOverlay(LiveSource, upper, work, target)
}

// LiveSource is the source name of a live root's overlay, as dracut's.
const LiveSource = "LiveOS_rootfs"

// upperDevice waits for the persistent overlay device, if there is one.
func (s *Setup) upperDevice(ctx context.Context, p Plan) (*device.Device, error) {
	if !p.Upper.Persistent() {
		return nil, nil
	}
	d, err := s.Wait(ctx, p.Upper.Device)
	if err != nil {
		return nil, fmt.Errorf("persistent overlay device %s: %w", p.Upper.Device, err)
	}
	if d.Info == nil || d.Info.Usage != blkid.UsageFilesystem {
		return nil, fmt.Errorf("persistent overlay device %s (%s) holds no filesystem; make one (mkfs.ext4 -L …) first", d.Node, p.Upper.Device)
	}
	return d, nil
}

// mountLower mounts the image (or a squashfs medium itself) on LowerDir.
func (s *Setup) mountLower(ctx context.Context, p Plan, medium, upperDev *device.Device) error {
	if medium.Info.Type == "squashfs" {
		// The medium is the image (root=live:/dev/sdb1 on a squashfs).
		return s.mountImage(ctx, p, medium.Node, medium.Info, false)
	}
	if medium.Info.Usage != blkid.UsageFilesystem {
		return fmt.Errorf("live medium %s (%s) holds %s, not a filesystem", medium.Node, p.Medium, medium.Info.Type)
	}
	s.Load(ctx, "fs-"+medium.Info.Type)
	loadNLS(ctx, s, medium.Info.Type)
	var flags uintptr = unix.MS_RDONLY
	if upperDev != nil && upperDev.Node == medium.Node {
		flags = 0 // the persistent overlay is on the medium itself
	}
	m := mount.Mount{Source: medium.Node, Target: MediumDir, FSType: medium.Info.Type, Flags: flags, Data: fsData(medium.Info.Type)}
	s.Log.Info("mounting the live medium", "mount", m.String())
	if err := s.Sys.Mount(m); err != nil {
		return fmt.Errorf("mount the live medium %s (%s): %w", medium.Node, p.Medium, err)
	}
	var tried []string
	img := ""
	for _, c := range p.ImageCandidates() {
		f := path.Join(MediumDir, c)
		tried = append(tried, f)
		if s.Sys.Exists(f) {
			img = f
			break
		}
	}
	if img == "" {
		return fmt.Errorf("live image %s not found on the live medium %s (%s, mounted on %s); looked for %s\n  set rd.live.dir= and rd.live.squashimg= to where the image is",
			p.SquashImg, medium.Node, p.Medium, MediumDir, strings.Join(tried, ", "))
	}
	info, err := s.probeImage(img)
	if err != nil {
		return err
	}
	if p.Ram {
		if err := s.copyToRAM(ctx, img); err != nil {
			return err
		}
		if flags&unix.MS_RDONLY == 0 {
			s.Log.Warn("rd.live.ram: the live medium stays mounted: it holds the persistent overlay", "medium", MediumDir)
		} else if err := s.Sys.Unmount(MediumDir, 0); err != nil {
			s.Log.Warn("cannot release the live medium after copying it to RAM", "medium", MediumDir, "err", err)
		} else {
			s.Log.Info("released the live medium; it may be removed", "device", medium.Node)
		}
		img = RAMCopy
	}
	return s.mountImage(ctx, p, img, info, true)
}

// probeImage checks that file holds a filesystem the kernel can mount.
func (s *Setup) probeImage(file string) (*blkid.Info, error) {
	info, err := s.Sys.Probe(file)
	switch {
	case errors.Is(err, blkid.ErrUnknown):
		return nil, fmt.Errorf("live image %s is not a squashfs image (no filesystem signature found): the file is corrupt or not an image", file)
	case err != nil:
		return nil, fmt.Errorf("live image %s: %w", file, err)
	case info.Usage != blkid.UsageFilesystem:
		return nil, fmt.Errorf("live image %s holds %s, not a squashfs image", file, info.Type)
	}
	return info, nil
}

func (s *Setup) copyToRAM(ctx context.Context, img string) error {
	s.Log.Info("copying the live image to RAM (rd.live.ram)", "from", img, "to", RAMCopy)
	n, err := s.Sys.CopyVerified(ctx, RAMCopy, img)
	if err != nil {
		return fmt.Errorf("rd.live.ram: copy the live image %s to %s: %w\n  (is there enough RAM? /run is a tmpfs of half the memory)", img, RAMCopy, err)
	}
	s.Log.Info("live image copied to RAM and verified", "bytes", n)
	return nil
}

// mountImage mounts the image read-only on LowerDir, through a loop device
// when it is a file.
func (s *Setup) mountImage(ctx context.Context, p Plan, src string, info *blkid.Info, file bool) error {
	if info == nil {
		var err error
		if info, err = s.probeImage(src); err != nil {
			return err
		}
	}
	if p.Ram && !file {
		if err := s.copyToRAM(ctx, src); err != nil {
			return err
		}
		src, file = RAMCopy, true
	}
	s.Load(ctx, "fs-"+info.Type)
	node := src
	if file {
		n, hold, err := s.Sys.Attach(src, 0)
		if err != nil {
			return fmt.Errorf("live image %s: %w", src, err)
		}
		defer hold.Close() // the mount keeps the device; autoclear frees it at umount
		node = n
	}
	m := mount.Mount{Source: node, Target: LowerDir, FSType: info.Type, Flags: unix.MS_RDONLY}
	s.Log.Info("mounting the lower layer", "image", src, "mount", m.String())
	if err := s.Sys.Mount(m); err != nil {
		return fmt.Errorf("mount the live image %s (via %s) on %s: %w: the image is corrupt or its filesystem (%s) is not supported by the kernel", src, node, LowerDir, err, info.Type)
	}
	return nil
}

// mountUpper prepares the upper and work directories: on the persistent
// overlay device, or on a tmpfs. The label and UUID of base (the medium or
// the plain root) name the default persistent directory.
func (s *Setup) mountUpper(ctx context.Context, p Plan, base, upperDev *device.Device) (upper, work string, err error) {
	if upperDev == nil {
		opts := "mode=0755"
		if p.Upper.TmpfsOptions != "" {
			opts += "," + p.Upper.TmpfsOptions
		}
		m := mount.Mount{Source: "tmpfs", Target: TmpfsDir, FSType: "tmpfs", Flags: unix.MS_NODEV | unix.MS_NOSUID, Data: opts}
		s.Log.Info("mounting the volatile upper layer", "mount", m.String())
		if err := s.Sys.Mount(m); err != nil {
			return "", "", fmt.Errorf("mount the tmpfs upper layer (%s): %w", opts, err)
		}
		upper, work = path.Join(TmpfsDir, "upper"), path.Join(TmpfsDir, "work")
	} else {
		root := PersistDir
		if base != nil && upperDev.Node == base.Node && p.Mode == Image {
			root = MediumDir // mounted read-write above
		} else {
			s.Load(ctx, "fs-"+upperDev.Info.Type)
			m := mount.Mount{Source: upperDev.Node, Target: PersistDir, FSType: upperDev.Info.Type, Data: fsData(upperDev.Info.Type)}
			s.Log.Info("mounting the persistent overlay device", "mount", m.String())
			if err := s.Sys.Mount(m); err != nil {
				return "", "", fmt.Errorf("mount the persistent overlay device %s (%s): %w", upperDev.Node, p.Upper.Device, err)
			}
		}
		var label, uuid string
		if base != nil && base.Info != nil {
			label, uuid = base.Info.Label, base.Info.UUID
		}
		rel := p.UpperPath(label, uuid)
		upper = path.Join(root, rel)
		work = path.Join(path.Dir(upper), "ovlwork")
	}
	for _, d := range []string{upper, work} {
		if err := s.Sys.MkdirAll(d); err != nil {
			return "", "", fmt.Errorf("overlay directory %s: %w", d, err)
		}
	}
	return upper, work, nil
}

func (s *Setup) mountOverlay(source, upper, work, target string) error {
	m := mount.Mount{Source: source, Target: target, FSType: "overlay",
		Data: "lowerdir=" + LowerDir + ",upperdir=" + upper + ",workdir=" + work}
	s.Log.Info("mounting the overlay root", "mount", m.String())
	if err := s.Sys.Mount(m); err != nil {
		return fmt.Errorf("mount the overlay root on %s: %w (the upper layer's filesystem must support xattrs: tmpfs, ext4, xfs, btrfs; not vfat)", target, err)
	}
	return nil
}

// Overlay turns the plain root mounted (read-only) on target into the
// lower layer of an overlay root: it moves it to LowerDir, prepares the
// upper layer and mounts the overlay on target.
func (s *Setup) Overlay(ctx context.Context, p Plan, root *device.Device, target string) error {
	s.Load(ctx, "overlay")
	if mp, _ := s.Sys.IsMountPoint(LowerDir); mp {
		// A retry: the lower layer is in place and the plan mounted the
		// root on target again.
		if err := s.Sys.Unmount(target, 0); err != nil {
			return fmt.Errorf("overlay root: unmount %s (the lower layer is already on %s): %w", target, LowerDir, err)
		}
	} else {
		m := mount.Mount{Source: target, Target: LowerDir, Flags: unix.MS_MOVE}
		s.Log.Info("moving the root to become the overlay's lower layer", "from", target, "to", LowerDir)
		if err := s.Sys.Mount(m); err != nil {
			return fmt.Errorf("overlay root: move %s to %s: %w", target, LowerDir, err)
		}
	}
	upperDev, err := s.upperDevice(ctx, p)
	if err != nil {
		return err
	}
	upper, work, err := s.mountUpper(ctx, p, root, upperDev)
	if err != nil {
		return err
	}
	return s.mountOverlay("overlay", upper, work, target)
}

// loadNLS loads the code page and character set vfat needs (see fsData):
// the kernel would request_module them, but the image has no modprobe.
func loadNLS(ctx context.Context, s *Setup, fsType string) {
	if fsType == "vfat" {
		s.Load(ctx, "nls_cp437", "nls_utf8")
	}
}

// fsData returns the mount options a medium of fsType needs: vfat gets
// iocharset=utf8, because the kernel's default (Debian: "ascii") is a
// module the image may not carry.
func fsData(fsType string) string {
	if fsType == "vfat" {
		return "iocharset=utf8"
	}
	return ""
}
