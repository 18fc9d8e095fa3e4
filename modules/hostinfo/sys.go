package hostinfo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/kmod"
	"github.com/pkginitrd/pkginitrd/internal/luks"
	"github.com/pkginitrd/pkginitrd/internal/mountinfo"
)

// Kind says where a Need comes from.
type Kind uint8

const (
	Loaded       Kind = iota // listed in /proc/modules
	RootDriver               // module of the driver bound to a device under the root filesystem
	RootModalias             // modalias of such a device whose driver is builtin or absent
	RootFS                   // the root filesystem type, as the alias fs-TYPE
	RootLayer                // a dm, md or loop layer under the root filesystem
	RootCrypto               // a kernel crypto algorithm (alias crypto-NAME) or module a dm-crypt layer uses
	RootTarget               // a device-mapper target of an LVM layer other than linear (dm_raid, dm_thin_pool, …)
)

// Layer kinds a root chain may have (Host.Layers).
const (
	LayerCrypt     = "crypt"     // dm-crypt (LUKS or plain)
	LayerLVM       = "lvm"       // an LVM logical volume
	LayerMD        = "md"        // md RAID
	LayerMultipath = "multipath" // dm-multipath
	LayerLoop      = "loop"      // a loop device
)

// Dirs says where Detect reads a machine's state.
type Dirs struct {
	Proc, Sys string
	// Dev holds the device nodes ("/dev") whose LUKS headers name the
	// ciphers of dm-crypt layers; "" means no device access (a recorded
	// system), and Proc's crypto list is used instead.
	Dev string
}

// Need is a module, or an alias to resolve to modules, that the host needs.
type Need struct {
	Name   string // module name, or alias ("fs-ext4", "md-raid1", a device modalias)
	Reason string // "loaded on host", "root device chain (vda2 ← vda ← virtio1 ← virtio_blk)", …
	Kind   Kind
}

// Host is what Detect found.
type Host struct {
	Loaded []string        // normalized names from /proc/modules
	Root   mountinfo.Mount // the root mount
	Needs  []Need          // the loaded modules first, then the root chain's needs, each once
	Layers []string        // kinds of layers under the root (LayerCrypt, LayerLVM, …), each once, in order found
}

// Detect reads d.Proc/modules, d.Proc/self/mountinfo (or
// d.Proc/1/mountinfo) and, for the root mount's block device, d.Sys (and
// d.Dev, see RootChain).
func Detect(d Dirs) (*Host, error) {
	h := &Host{}
	f, err := os.Open(filepath.Join(d.Proc, "modules"))
	if err != nil {
		return nil, fmt.Errorf("host-only detection: %w", err)
	}
	h.Loaded, err = ParseModules(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(d.Proc, "modules"), err)
	}
	for _, m := range h.Loaded {
		h.Needs = append(h.Needs, Need{Name: m, Reason: "loaded on host", Kind: Loaded})
	}
	mi := filepath.Join(d.Proc, "self", "mountinfo")
	f, err = os.Open(mi)
	if errors.Is(err, fs.ErrNotExist) {
		mi = filepath.Join(d.Proc, "1", "mountinfo")
		f, err = os.Open(mi)
	}
	if err != nil {
		return nil, fmt.Errorf("host-only detection: %w", err)
	}
	mounts, err := mountinfo.Parse(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mi, err)
	}
	if h.Root, err = RootMount(mounts); err != nil {
		return nil, fmt.Errorf("%s: %w", mi, err)
	}
	w, err := rootChain(d, h.Root)
	if err != nil {
		return nil, err
	}
	h.Needs = append(h.Needs, w.needs...)
	h.Layers = w.layers
	return h, nil
}

// RootChain returns what the root mount needs, each Need once, in the
// order found:
//
//   - the filesystem type (alias fs-TYPE);
//   - the block device of the mount (by MAJ:MIN under d.Sys/dev/block, or
//     by the mount source /dev/NAME when the mount has an anonymous device
//     as btrfs does); for a partition, its disk;
//   - for a dm device, dm_mod, and by its dm/uuid: for CRYPT- (dm-crypt)
//     dm_crypt and the crypto its cipher needs (below); for mpath-
//     dm_multipath; for LVM- the targets of non-linear volumes, which
//     sysfs shows only through the hidden sub-volumes LVM names by
//     convention (dm/name …_rimage_N: dm_raid and the md personalities;
//     _mimage_N: dm_mirror; _tdata/_tmeta and uuid suffix -tpool:
//     dm_thin_pool; _cdata/_cmeta/_corig: dm_cache; uuid suffix -real/-cow:
//     dm_snapshot; _vdata: dm_vdo; _imeta: dm_integrity; _wcorig:
//     dm_writecache);
//   - for an md device the personality (alias md-LEVEL from md/level); for
//     a loop device, loop; then, recursively, every device in slaves/;
//   - for each disk with a device link, every ancestor device up to
//     d.Sys/devices: the module its driver belongs to (driver/module
//     link), or, when the driver is builtin (no module link) or absent, its
//     modalias, which the resolver matches against the kernel's aliases.
//     NVMe namespaces of a multipath subsystem lead to the subsystem's
//     controllers.
//
// A dm-crypt layer's crypto: when d.Dev is set and the layer's underlying
// device (its slave) has a readable LUKS header, the algorithms its
// segments and keyslots name (see CipherAlgorithms) as aliases
// crypto-NAME, plus algif_skcipher (cryptsetup decrypts keyslots through
// AF_ALG); otherwise, for a recorded system or plain dm-crypt, the modules
// d.Proc/crypto lists as providing loaded skcipher, cipher and aead
// algorithms (the cipher in use is among them, with others the host loaded).
func RootChain(d Dirs, root mountinfo.Mount) ([]Need, error) {
	w, err := rootChain(d, root)
	if err != nil {
		return nil, err
	}
	return w.needs, nil
}

func rootChain(d Dirs, root mountinfo.Mount) (*walker, error) {
	w := &walker{d: d, sys: filepath.Clean(d.Sys), seen: map[Need]bool{}, visited: map[string]bool{}}
	if root.FSType != "" {
		w.add(Need{Name: "fs-" + root.FSType, Reason: "root filesystem " + root.FSType, Kind: RootFS})
	}
	dir, err := w.rootBlock(root)
	if err != nil || dir == "" {
		return w, err
	}
	if err := w.block(dir, nil); err != nil {
		return nil, err
	}
	return w, nil
}

type walker struct {
	d       Dirs
	layers  []string
	sys     string
	needs   []Need
	seen    map[Need]bool
	visited map[string]bool // block directories done
}

func (w *walker) layer(kind string) {
	if !slices.Contains(w.layers, kind) {
		w.layers = append(w.layers, kind)
	}
}

func (w *walker) add(n Need) {
	if !w.seen[n] {
		w.seen[n] = true
		w.needs = append(w.needs, n)
	}
}

// rootBlock returns the sysfs directory of the root's block device, or ""
// when the root is not on a block device (tmpfs, nfs, overlay, …).
func (w *walker) rootBlock(root mountinfo.Mount) (string, error) {
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
		dmName := readAttr(filepath.Join(dir, "dm", "name"))
		switch {
		case strings.HasPrefix(uuid, "CRYPT-"):
			w.layer(LayerCrypt)
			w.add(Need{Name: "dm_crypt", Reason: chainReason(chain, "dm-crypt "+dmName), Kind: RootLayer})
			if err := w.crypto(dir, chain, uuid); err != nil {
				return err
			}
		case strings.HasPrefix(uuid, "mpath-"):
			w.layer(LayerMultipath)
			w.add(Need{Name: "dm_multipath", Reason: chainReason(chain, "multipath"), Kind: RootLayer})
		case strings.HasPrefix(uuid, "LVM-"):
			w.layer(LayerLVM)
			for _, t := range lvmTargets(dmName, uuid) {
				w.add(Need{Name: t, Reason: chainReason(chain, "LVM "+dmName), Kind: RootTarget})
			}
		}
	}
	if level := readAttr(filepath.Join(dir, "md", "level")); level != "" {
		w.layer(LayerMD)
		w.add(Need{Name: "md_mod", Reason: chainReason(chain, "md"), Kind: RootLayer})
		w.add(Need{Name: "md-" + level, Reason: chainReason(chain, "md "+level), Kind: RootLayer})
	}
	if exists(filepath.Join(dir, "loop")) {
		w.layer(LayerLoop)
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
	var out []string
	for _, n := range h.Needs {
		if slices.Contains(kinds, n.Kind) {
			out = append(out, n.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// lvmTargets returns the device-mapper target modules an LVM device needs
// beyond dm_mod's linear and striped targets, from the names LVM gives the
// hidden sub-volumes of non-linear volumes (lib/metadata/lv_manip.c) and
// the suffixes of their dm uuids (lib/activate/dev_manager.c).
func lvmTargets(name, uuid string) []string {
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(name, s) {
				return true
			}
		}
		return false
	}
	suffix := func(subs ...string) bool {
		for _, s := range subs {
			if strings.HasSuffix(uuid, s) {
				return true
			}
		}
		return false
	}
	var out []string
	switch {
	case has("_rimage_", "_rmeta_"):
		// dm-raid runs md's personalities; the level is in the LVM
		// metadata, not in sysfs.
		out = append(out, "dm_raid", "raid1", "raid10", "raid456")
	case has("_mimage_", "_mlog"):
		out = append(out, "dm_mirror")
	}
	if has("_tdata", "_tmeta") || suffix("-tpool", "-pool") {
		out = append(out, "dm_thin_pool")
	}
	if has("_cdata", "_cmeta", "_corig", "_cpool", "_cvol") {
		out = append(out, "dm_cache", "dm_cache_smq")
	}
	if suffix("-real", "-cow") {
		out = append(out, "dm_snapshot")
	}
	if has("_vdata") || suffix("-vpool") {
		out = append(out, "dm_vdo")
	}
	if has("_imeta", "_iorig") {
		out = append(out, "dm_integrity")
	}
	if has("_wcorig") {
		out = append(out, "dm_writecache")
	}
	return out
}

// crypto adds what the dm-crypt device dir needs from the kernel's crypto
// API (see RootChain).
func (w *walker) crypto(dir string, chain []string, uuid string) error {
	slaves, err := os.ReadDir(filepath.Join(dir, "slaves"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("block device %s: %w", dir, err)
	}
	if w.d.Dev != "" && len(slaves) == 1 && !strings.HasPrefix(uuid, "CRYPT-PLAIN-") {
		dev := filepath.Join(w.d.Dev, slaves[0].Name())
		if l, err := readLUKS(dev); err == nil {
			for _, spec := range l.Ciphers {
				for _, alg := range CipherAlgorithms(spec) {
					w.add(Need{Name: "crypto-" + alg, Reason: chainReason(chain, fmt.Sprintf("LUKS%d cipher %s", l.Version, spec)), Kind: RootCrypto})
				}
			}
			for _, integ := range l.Integrity {
				w.add(Need{Name: "dm_integrity", Reason: chainReason(chain, fmt.Sprintf("LUKS%d integrity %s", l.Version, integ)), Kind: RootTarget})
				for _, alg := range strings.FieldsFunc(integ, func(r rune) bool { return r == '(' || r == ')' || r == ',' }) {
					w.add(Need{Name: "crypto-" + alg, Reason: chainReason(chain, fmt.Sprintf("LUKS%d integrity %s", l.Version, integ)), Kind: RootCrypto})
				}
			}
			w.add(Need{Name: "algif_skcipher", Reason: chainReason(chain, fmt.Sprintf("LUKS%d keyslots, decrypted by cryptsetup through AF_ALG", l.Version)), Kind: RootCrypto})
			return nil
		}
	}
	// No header to read: the modules of the loaded ciphers.
	f, err := os.Open(filepath.Join(w.d.Proc, "crypto"))
	if err != nil {
		return nil // best effort: loaded modules come in as "loaded on host" anyway
	}
	defer f.Close()
	algs, err := ParseCrypto(f)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(w.d.Proc, "crypto"), err)
	}
	for _, a := range algs {
		switch a.Type {
		case "skcipher", "cipher", "aead":
		default:
			continue
		}
		if a.Module == "" || a.Module == "kernel" {
			continue
		}
		w.add(Need{Name: kmod.Normalize(a.Module), Reason: chainReason(chain, "dm-crypt, /proc/crypto: "+a.Name+" by "+a.Driver), Kind: RootCrypto})
	}
	return nil
}

// readLUKS parses the LUKS header of the device node dev.
func readLUKS(dev string) (luks.Info, error) {
	f, err := os.Open(dev)
	if err != nil {
		return luks.Info{}, err
	}
	defer f.Close()
	l, err := luks.Read(f)
	if err != nil {
		return l, fmt.Errorf("%s: %w", dev, err)
	}
	return l, nil
}

// DMName returns the device-mapper name (dm/name in sysfs) of the device
// node dev ("/dev/dm-1" → "vgc-root"), or "" when dev is no dm device.
func DMName(sysDir, dev string) string {
	name, ok := strings.CutPrefix(dev, "/dev/")
	if !ok || !strings.HasPrefix(name, "dm-") || strings.Contains(name, "/") {
		return ""
	}
	dir, err := resolveLink(filepath.Join(sysDir, "class", "block", name))
	if err != nil {
		return ""
	}
	return readAttr(filepath.Join(dir, "dm", "name"))
}
