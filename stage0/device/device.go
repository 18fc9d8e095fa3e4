// Package device finds block devices without udev: it lists them from sysfs
// (/sys/class/block), probes each node under /dev with package blkid, reads
// partition tables for PARTUUID/PARTLABEL, resolves root=-style references
// (cmdline.DeviceRef) to a device, and creates the /dev/disk/by-* symlinks
// that udev would have made.
//
// The sysfs and /dev roots are parameters, so tests run on temporary trees.
package device

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/blkid"
)

// Device is one block device.
type Device struct {
	Name         string // kernel name as in /sys/class/block ("vda1", "nvme0n1p2", "dm-0")
	Node         string // device node, e.g. "/dev/vda1" (under the /dev root given to Scan)
	Major, Minor uint32
	Size         int64  // bytes
	Partition    int    // partition number; 0 for a whole disk
	Parent       string // the whole disk's Name, for partitions
	ReadOnly     bool
	DMName       string // device-mapper name (dm/name), for dm-N
	SectorSize   int    // logical block size of the (parent) disk

	Info  *blkid.Info      // what is on the device; nil if nothing known
	Table *blkid.Table     // whole disks: the partition table, if any
	Part  *blkid.Partition // partitions: the entry in the parent's table, if found
	Err   error            // why probing failed, if it did
}

// PartUUID returns the partition's PARTUUID, or "".
func (d *Device) PartUUID() string {
	if d.Part == nil {
		return ""
	}
	return d.Part.UUID
}

// PartLabel returns the GPT partition name, or "".
func (d *Device) PartLabel() string {
	if d.Part == nil {
		return ""
	}
	return d.Part.Name
}

// String describes the device in blkid's vocabulary, for logs and the
// emergency report: `vda1 (254:1, 1.0 GiB) TYPE=ext4 UUID=… LABEL="root" PARTUUID=…`.
func (d *Device) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%d:%d, %s)", d.Name, d.Major, d.Minor, humanSize(d.Size))
	if d.DMName != "" {
		fmt.Fprintf(&b, " DM=%s", d.DMName)
	}
	if d.Table != nil {
		fmt.Fprintf(&b, " PTTYPE=%s PTUUID=%s", d.Table.Type, d.Table.UUID)
	}
	if d.Info != nil {
		fmt.Fprintf(&b, " TYPE=%s", d.Info.Type)
		if d.Info.UUID != "" {
			fmt.Fprintf(&b, " UUID=%s", d.Info.UUID)
		}
		if d.Info.Label != "" {
			fmt.Fprintf(&b, " LABEL=%q", d.Info.Label)
		} else if d.Info.LabelFATBoot != "" {
			fmt.Fprintf(&b, " LABEL_FATBOOT=%q", d.Info.LabelFATBoot)
		}
	} else if d.Table == nil && d.Err == nil {
		b.WriteString(" (no filesystem)")
	}
	if u := d.PartUUID(); u != "" {
		fmt.Fprintf(&b, " PARTUUID=%s", u)
	}
	if l := d.PartLabel(); l != "" {
		fmt.Fprintf(&b, " PARTLABEL=%q", l)
	}
	if d.Err != nil {
		fmt.Fprintf(&b, " (probe failed: %v)", d.Err)
	}
	return b.String()
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Scan lists the block devices in sysRoot/class/block, skipping empty ones
// (size 0: unused loop devices, drives without media), and probes each
// through its node in devRoot. Probe failures are recorded in Device.Err,
// not returned; the error is for an unreadable sysfs. Devices are sorted
// by name, whole disks before their partitions.
func Scan(sysRoot, devRoot string) ([]Device, error) {
	classDir := filepath.Join(sysRoot, "class", "block")
	ents, err := os.ReadDir(classDir)
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	var devs []Device
	for _, e := range ents {
		d, err := readSysfs(classDir, e.Name(), devRoot)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while we looked
		}
		if err != nil {
			return nil, err
		}
		if d.Size == 0 {
			continue
		}
		devs = append(devs, d)
	}
	sort.Slice(devs, func(i, j int) bool {
		if devs[i].Partition == 0 != (devs[j].Partition == 0) {
			return devs[i].Partition == 0
		}
		return devs[i].Name < devs[j].Name
	})
	tables := map[string]*blkid.Table{}
	for i := range devs {
		d := &devs[i]
		if d.Partition != 0 {
			if t, ok := tables[d.Parent]; ok {
				if p, ok := t.Find(d.Partition); ok {
					d.Part = &p
				}
			}
		}
		probe(d)
		if d.Table != nil {
			tables[d.Name] = d.Table
		}
	}
	sort.SliceStable(devs, func(i, j int) bool { return sortKey(&devs[i]) < sortKey(&devs[j]) })
	return devs, nil
}

// sortKey orders partitions right after their disk.
func sortKey(d *Device) string {
	if d.Partition != 0 {
		return fmt.Sprintf("%s\x00%08d", d.Parent, d.Partition)
	}
	return d.Name
}

func readSysfs(classDir, name, devRoot string) (Device, error) {
	dir := filepath.Join(classDir, name)
	d := Device{Name: name, SectorSize: 512}
	devno, err := readAttr(dir, "dev")
	if err != nil {
		return d, err
	}
	maj, min, ok := strings.Cut(devno, ":")
	a, err1 := strconv.ParseUint(maj, 10, 32)
	b, err2 := strconv.ParseUint(min, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return d, fmt.Errorf("block device %s: bad dev %q", name, devno)
	}
	d.Major, d.Minor = uint32(a), uint32(b)
	devName := strings.ReplaceAll(name, "!", "/")
	if ue, err := readAttr(dir, "uevent"); err == nil {
		for _, line := range strings.Split(ue, "\n") {
			if v, ok := strings.CutPrefix(line, "DEVNAME="); ok && v != "" {
				devName = v
			}
		}
	}
	d.Node = filepath.Join(devRoot, devName)
	if s, err := readAttr(dir, "size"); err == nil {
		n, _ := strconv.ParseInt(s, 10, 64)
		d.Size = n * 512 // sysfs "size" is always in 512-byte units
	}
	if s, err := readAttr(dir, "ro"); err == nil {
		d.ReadOnly = s == "1"
	}
	if s, err := readAttr(dir, "dm/name"); err == nil {
		d.DMName = s
	}
	diskDir := dir
	if s, err := readAttr(dir, "partition"); err == nil {
		d.Partition, _ = strconv.Atoi(s)
		// A partition's sysfs directory lives inside its disk's.
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return d, err
		}
		diskDir = filepath.Dir(real)
		d.Parent = filepath.Base(diskDir)
	}
	if s, err := readAttr(diskDir, "queue/logical_block_size"); err == nil {
		if n, err := strconv.Atoi(s); err == nil && n >= 512 {
			d.SectorSize = n
		}
	}
	return d, nil
}

func readAttr(dir, attr string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, attr))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// probe reads the filesystem signature and, for whole disks, the partition
// table of d.
func probe(d *Device) {
	f, err := os.Open(d.Node)
	if err != nil {
		d.Err = fmt.Errorf("open %s: %w", d.Node, err)
		return
	}
	defer f.Close()
	info, err := blkid.Probe(f)
	switch {
	case err == nil:
		d.Info = info
	case !errors.Is(err, blkid.ErrUnknown):
		d.Err = fmt.Errorf("probe %s: %w", d.Node, err)
	}
	if d.Partition == 0 {
		t, err := blkid.ReadPartitions(f, d.Size, d.SectorSize)
		switch {
		case err == nil:
			d.Table = t
		case !errors.Is(err, blkid.ErrNoPartitionTable) && d.Err == nil:
			d.Err = fmt.Errorf("partition table of %s: %w", d.Node, err)
		}
	}
}
