package hostinfo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pkginitrd/pkginitrd/kmod"
)

// Kind says where a Need comes from.
type Kind uint8

const (
	Loaded       Kind = iota // listed in /proc/modules
	RootDriver               // module of the driver bound to a device under the root filesystem
	RootModalias             // modalias of such a device whose driver is builtin or absent
	RootFS                   // the root filesystem type, as the alias fs-TYPE
	RootLayer                // a dm, md or loop layer under the root filesystem
)

// Need is a module, or an alias to resolve to modules, that the host needs.
type Need struct {
	Name   string // module name, or alias ("fs-ext4", "md-raid1", a device modalias)
	Reason string // "loaded on host", "root device chain (vda2 ← vda ← virtio1 ← virtio_blk)", …
	Kind   Kind
}

// Host is what Detect found.
type Host struct {
	Loaded []string // normalized names from /proc/modules
	Root   Mount    // the root mount
	Needs  []Need   // the loaded modules first, then the root chain's needs, each once
}

// Detect reads procDir/modules, procDir/self/mountinfo (or
// procDir/1/mountinfo) and, for the root mount's block device, sysDir.
//
// What the root chain gives: the filesystem type (alias fs-TYPE); the block
// device of the mount (by MAJ:MIN under sysDir/dev/block, or by the mount
// source /dev/NAME when the mount has an anonymous device as btrfs does);
// for a partition, its disk; for a dm device, dm_mod, and dm_crypt when
// dm/uuid starts with CRYPT- (LVM- and others give dm_mod only: sysfs does
// not show a dm table, so the targets of an LVM volume other than linear are
// not found); for an md device the personality (alias md-LEVEL from
// md/level); for a loop device, loop; then, recursively, every device in
// slaves/. For each disk with a device link, every ancestor device up to
// sysDir/devices: the module its driver belongs to (driver/module link), or,
// when the driver is builtin (no module link) or absent, its modalias, which
// the resolver matches against the kernel's aliases. NVMe namespaces of a
// multipath subsystem (devices/virtual/nvme-subsystem) lead to the
// subsystem's controllers.
func Detect(procDir, sysDir string) (*Host, error) {
	h := &Host{}
	f, err := os.Open(filepath.Join(procDir, "modules"))
	if err != nil {
		return nil, fmt.Errorf("host-only detection: %w", err)
	}
	h.Loaded, err = ParseModules(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(procDir, "modules"), err)
	}
	for _, m := range h.Loaded {
		h.Needs = append(h.Needs, Need{Name: m, Reason: "loaded on host", Kind: Loaded})
	}
	mi := filepath.Join(procDir, "self", "mountinfo")
	f, err = os.Open(mi)
	if errors.Is(err, fs.ErrNotExist) {
		mi = filepath.Join(procDir, "1", "mountinfo")
		f, err = os.Open(mi)
	}
	if err != nil {
		return nil, fmt.Errorf("host-only detection: %w", err)
	}
	mounts, err := ParseMountInfo(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mi, err)
	}
	if h.Root, err = RootMount(mounts); err != nil {
		return nil, fmt.Errorf("%s: %w", mi, err)
	}
	chain, err := RootChain(sysDir, h.Root)
	if err != nil {
		return nil, err
	}
	h.Needs = append(h.Needs, chain...)
	return h, nil
}

// RootChain returns what the root mount needs (see Detect), each Need once,
// in the order found.
func RootChain(sysDir string, root Mount) ([]Need, error) {
	w := &walker{sys: filepath.Clean(sysDir), seen: map[Need]bool{}, visited: map[string]bool{}}
	if root.FSType != "" {
		w.add(Need{Name: "fs-" + root.FSType, Reason: "root filesystem " + root.FSType, Kind: RootFS})
	}
	dir, err := w.rootBlock(root)
	if err != nil || dir == "" {
		return w.needs, err
	}
	if err := w.block(dir, nil); err != nil {
		return nil, err
	}
	return w.needs, nil
}

type walker struct {
	sys     string
	needs   []Need
	seen    map[Need]bool
	visited map[string]bool // block directories done
}

func (w *walker) add(n Need) {
	if !w.seen[n] {
		w.seen[n] = true
		w.needs = append(w.needs, n)
	}
}

// rootBlock returns the sysfs directory of the root's block device, or ""
// when the root is not on a block device (tmpfs, nfs, overlay, …).
func (w *walker) rootBlock(root Mount) (string, error) {
	if !strings.HasPrefix(root.Dev, "0:") {
		link := filepath.Join(w.sys, "dev", "block", root.Dev)
		dir, err := resolveLink(link)
		if err != nil {
			return "", fmt.Errorf("root device %s (%s): %w", root.Dev, root.Source, err)
		}
		return dir, nil
	}
	// Anonymous device (btrfs, …): the mount source names the device.
	if name, ok := strings.CutPrefix(root.Source, "/dev/"); ok && !strings.Contains(name, "/") {
		link := filepath.Join(w.sys, "class", "block", name)
		dir, err := resolveLink(link)
		if err != nil {
			return "", fmt.Errorf("root device %s: %w", root.Source, err)
		}
		return dir, nil
	}
	return "", nil
}

// resolveLink returns the target of a sysfs symbolic link, resolved
// lexically against the link's directory (sysfs links are relative, and a
// recorded tree may lack the target's own files).
func resolveLink(link string) (string, error) {
	t, err := os.Readlink(link)
	if err != nil {
		return "", err
	}
	if filepath.IsAbs(t) {
		return "", fmt.Errorf("%s: absolute link %s: not a sysfs link", link, t)
	}
	return filepath.Join(filepath.Dir(link), t), nil
}

func readAttr(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func chainReason(chain []string, more ...string) string {
	all := append(append([]string(nil), chain...), more...)
	return "root device chain (" + strings.Join(all, " ← ") + ")"
}

// block handles one block device directory (a disk, a partition, a dm or
// md device) reached through chain.
func (w *walker) block(dir string, chain []string) error {
	name := filepath.Base(dir)
	chain = append(append([]string(nil), chain...), name)
	if w.visited[dir] {
		return nil
	}
	w.visited[dir] = true
	if exists(filepath.Join(dir, "partition")) {
		return w.block(filepath.Dir(dir), chain)
	}
	if uuid := readAttr(filepath.Join(dir, "dm", "uuid")); exists(filepath.Join(dir, "dm")) {
		w.add(Need{Name: "dm_mod", Reason: chainReason(chain, "device-mapper"), Kind: RootLayer})
		switch {
		case strings.HasPrefix(uuid, "CRYPT-"):
			w.add(Need{Name: "dm_crypt", Reason: chainReason(chain, "dm-crypt "+readAttr(filepath.Join(dir, "dm", "name"))), Kind: RootLayer})
		case strings.HasPrefix(uuid, "mpath-"):
			w.add(Need{Name: "dm_multipath", Reason: chainReason(chain, "multipath"), Kind: RootLayer})
		}
	}
	if level := readAttr(filepath.Join(dir, "md", "level")); level != "" {
		w.add(Need{Name: "md_mod", Reason: chainReason(chain, "md"), Kind: RootLayer})
		w.add(Need{Name: "md-" + level, Reason: chainReason(chain, "md "+level), Kind: RootLayer})
	}
	if exists(filepath.Join(dir, "loop")) {
		w.add(Need{Name: "loop", Reason: chainReason(chain, "loop"), Kind: RootLayer})
	}
	slaves, err := os.ReadDir(filepath.Join(dir, "slaves"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("block device %s: %w", dir, err)
	}
	for _, s := range slaves {
		sub, err := resolveLink(filepath.Join(dir, "slaves", s.Name()))
		if err != nil {
			return fmt.Errorf("block device %s: slave %s: %w", name, s.Name(), err)
		}
		if err := w.block(sub, chain); err != nil {
			return err
		}
	}
	if !exists(filepath.Join(dir, "device")) {
		return nil
	}
	dev, err := resolveLink(filepath.Join(dir, "device"))
	if err != nil {
		return fmt.Errorf("block device %s: %w", name, err)
	}
	if strings.Contains(dev, string(filepath.Separator)+"nvme-subsystem"+string(filepath.Separator)) {
		return w.nvmeSubsystem(dev, chain)
	}
	return w.ancestors(dev, chain)
}

// nvmeSubsystem follows the controllers (nvmeN links) of a multipath NVMe
// subsystem.
func (w *walker) nvmeSubsystem(dir string, chain []string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("nvme subsystem %s: %w", dir, err)
	}
	found := false
	for _, e := range ents {
		if e.Type()&fs.ModeSymlink == 0 || !strings.HasPrefix(e.Name(), "nvme") {
			continue
		}
		ctrl, err := resolveLink(filepath.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("nvme subsystem %s: %w", dir, err)
		}
		found = true
		if err := w.ancestors(ctrl, append(chain, filepath.Base(dir))); err != nil {
			return err
		}
	}
	if !found {
		return fmt.Errorf("nvme subsystem %s: no controller links", dir)
	}
	return nil
}

// ancestors handles a device and every parent of it below sysDir/devices.
func (w *walker) ancestors(dev string, chain []string) error {
	top := filepath.Join(w.sys, "devices")
	if rel, err := filepath.Rel(top, dev); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("device %s: not under %s", dev, top)
	}
	for d := dev; d != top && strings.HasPrefix(d, top+string(filepath.Separator)); d = filepath.Dir(d) {
		w.device(d, chain)
	}
	return nil
}

// device records the module of a device's driver, or its modalias.
func (w *walker) device(d string, chain []string) {
	name := filepath.Base(d)
	modalias := readAttr(filepath.Join(d, "modalias"))
	if drv, err := resolveLink(filepath.Join(d, "driver")); err == nil {
		if mod, err := os.Readlink(filepath.Join(drv, "module")); err == nil {
			m := kmod.Normalize(filepath.Base(mod))
			w.add(Need{Name: m, Reason: chainReason(chain, name, m), Kind: RootDriver})
			return
		}
		if modalias != "" {
			w.add(Need{Name: modalias, Reason: chainReason(chain, name, "driver "+filepath.Base(drv)+" builtin, modalias"), Kind: RootModalias})
		}
		return
	}
	if modalias != "" {
		w.add(Need{Name: modalias, Reason: chainReason(chain, name, "no driver, modalias"), Kind: RootModalias})
	}
}

// Modules returns the names of the Needs of the given kinds, sorted, each once.
func (h *Host) Modules(kinds ...Kind) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range h.Needs {
		for _, k := range kinds {
			if n.Kind == k && !seen[n.Name] {
				seen[n.Name] = true
				out = append(out, n.Name)
			}
		}
	}
	sort.Strings(out)
	return out
}
