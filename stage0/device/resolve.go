package device

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/pkginitrd/pkginitrd/internal/blkid"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
)

// Find returns the devices that ref names, in devs order. Path references
// match by node path only; Resolve also follows symlinks and device numbers.
//
// UUID= matches filesystems, crypto containers and swap but not RAID/LVM
// members (as udev's /dev/disk/by-uuid), case-insensitively (vfat UUIDs are
// upper-case, users often type lower-case). LABEL= falls back to the FAT
// boot-sector label when the root directory has none.
func Find(devs []Device, ref cmdline.DeviceRef) []*Device {
	var out []*Device
	for i := range devs {
		d := &devs[i]
		if matches(d, ref) {
			out = append(out, d)
		}
	}
	if ref.Kind == cmdline.PartUUID && ref.PartNrOff != 0 {
		var shifted []*Device
		for _, d := range out {
			for i := range devs {
				o := &devs[i]
				if o.Parent == d.Parent && o.Partition == d.Partition+ref.PartNrOff {
					shifted = append(shifted, o)
				}
			}
		}
		out = shifted
	}
	return out
}

func matches(d *Device, ref cmdline.DeviceRef) bool {
	switch ref.Kind {
	case cmdline.UUID:
		return d.Info != nil && d.Info.Usage != blkid.UsageRaid && d.Info.UUID != "" && strings.EqualFold(d.Info.UUID, ref.Value)
	case cmdline.Label:
		return d.Info != nil && (d.Info.Label == ref.Value || d.Info.Label == "" && d.Info.LabelFATBoot != "" && d.Info.LabelFATBoot == ref.Value)
	case cmdline.PartUUID:
		return d.Part != nil && strings.EqualFold(d.Part.UUID, ref.Value)
	case cmdline.PartLabel:
		return d.Part != nil && d.Part.Name == ref.Value
	case cmdline.Devno:
		return d.Major == ref.Major && d.Minor == ref.Minor
	case cmdline.Path:
		return d.Node == ref.Value
	}
	return false
}

// Resolve finds the one device ref names. A path reference
// ("/dev/vda1", "/dev/mapper/root", "/dev/disk/by-id/…") is looked up under
// devRoot: by node name, then through symlinks, then by the device number
// of the node it names. It returns nil if nothing matches yet; the error
// reports references Resolve can never satisfy (live:, none).
func Resolve(devRoot string, devs []Device, ref cmdline.DeviceRef) (*Device, error) {
	switch ref.Kind {
	case cmdline.None:
		return nil, fmt.Errorf("no root device given (root= is missing and the image has no default)")
	case cmdline.Live:
		return nil, fmt.Errorf("%s is a live image reference, not a block device", ref)
	case cmdline.Path:
		return resolvePath(devRoot, devs, ref.Value), nil
	}
	if m := Find(devs, ref); len(m) > 0 {
		return m[0], nil
	}
	return nil, nil
}

func resolvePath(devRoot string, devs []Device, p string) *Device {
	rel, ok := strings.CutPrefix(p, "/dev/")
	if !ok {
		return nil
	}
	node := filepath.Join(devRoot, rel)
	for i := range devs {
		if devs[i].Node == node {
			return &devs[i]
		}
	}
	// Symlinks (by-id, /dev/VG/LV, /dev/root): compare the target inside
	// the /dev root, then the device number.
	if target, err := filepath.EvalSymlinks(node); err == nil {
		for i := range devs {
			if t, err := filepath.EvalSymlinks(devs[i].Node); err == nil && t == target {
				return &devs[i]
			}
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(node, &st); err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
		maj, min := major(st.Rdev), minor(st.Rdev)
		for i := range devs {
			if devs[i].Major == maj && devs[i].Minor == min {
				return &devs[i]
			}
		}
	}
	return nil
}

// major and minor decode a Linux dev_t (glibc's gnu_dev_major/minor).
func major(dev uint64) uint32 { return uint32((dev>>8)&0xfff | (dev>>32)&^0xfff) }
func minor(dev uint64) uint32 { return uint32(dev&0xff | (dev>>12)&^0xff) }
