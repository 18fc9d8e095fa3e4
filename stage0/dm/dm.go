// Package dm activates the device-mapper layers a root can sit on, with
// the distribution's own tools run without udev: LUKS containers through
// `cryptsetup open` (passphrase typed at the console, or a keyfile) and LVM
// volume groups through `lvm vgchange -ay --sysinit`. It reads dracut's
// rd.luks*/rd.lvm* options and creates the /dev/mapper/NAME and /dev/VG/LV
// links udev would have made.
//
// Decisions are pure functions of the command line and the probed
// devices; the commands, the console and /dev go through System.
package dm

import (
	"fmt"
	"strings"

	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
)

// Config is what the rd.luks* and rd.lvm* options ask for.
type Config struct {
	LUKS bool // rd.luks (default on); false with rd.luks=0
	// LUKSUUIDs restricts unlocking to these containers (rd.luks.uuid=,
	// "luks-" prefix removed); empty means every LUKS device seen.
	LUKSUUIDs []string
	// Names maps a container UUID to its mapping name (rd.luks.name=UUID=NAME).
	Names map[string]string
	// KeyFile is the keyfile inside the image (rd.luks.key=PATH); "" = ask.
	KeyFile string

	LVM bool     // rd.lvm (default on); false with rd.lvm=0
	VGs []string // rd.lvm.vg=: activate only these volume groups
	LVs []string // rd.lvm.lv=VG/LV: activate only these logical volumes
}

// Parse reads the rd.luks* and rd.lvm* tokens of the command line (see
// cmdline.CmdLine.Features); the strings are warnings about values ignored.
func Parse(features []cmdline.Param) (Config, []string) {
	c := Config{LUKS: true, LVM: true, Names: map[string]string{}}
	var warn []string
	boolVal := func(p cmdline.Param) bool {
		v, ok := p.Bool()
		if !ok {
			warn = append(warn, fmt.Sprintf("%s=%s: not a boolean, using on", p.Key, p.Value))
			return true
		}
		return v
	}
	for _, p := range features {
		switch p.Key {
		case "rd.luks":
			c.LUKS = boolVal(p)
		case "rd.luks.uuid":
			for _, u := range strings.Split(p.Value, ",") {
				if u = strings.TrimPrefix(strings.TrimSpace(u), "luks-"); u != "" {
					c.LUKSUUIDs = append(c.LUKSUUIDs, u)
				}
			}
		case "rd.luks.name":
			uuid, name, ok := strings.Cut(strings.TrimPrefix(p.Value, "UUID="), "=")
			uuid = strings.TrimPrefix(uuid, "luks-")
			if !ok || uuid == "" || name == "" || strings.Contains(name, "/") {
				warn = append(warn, fmt.Sprintf("rd.luks.name=%s: want UUID=NAME", p.Value))
				continue
			}
			c.Names[strings.ToLower(uuid)] = name
			c.LUKSUUIDs = append(c.LUKSUUIDs, uuid)
		case "rd.luks.key":
			path, rest, _ := strings.Cut(p.Value, ":")
			if !strings.HasPrefix(path, "/") {
				warn = append(warn, fmt.Sprintf("rd.luks.key=%s: want an absolute path inside the image", p.Value))
				continue
			}
			if rest != "" {
				warn = append(warn, fmt.Sprintf("rd.luks.key=%s: a key device is not supported; using %s inside the image", p.Value, path))
			}
			c.KeyFile = path
		case "rd.lvm":
			c.LVM = boolVal(p)
		case "rd.lvm.vg":
			for _, v := range strings.Split(p.Value, ",") {
				if v = strings.TrimSpace(v); v != "" {
					c.VGs = append(c.VGs, v)
				}
			}
		case "rd.lvm.lv":
			for _, v := range strings.Split(p.Value, ",") {
				if v = strings.TrimSpace(v); v != "" {
					if vg, lv, ok := strings.Cut(v, "/"); !ok || vg == "" || lv == "" {
						warn = append(warn, fmt.Sprintf("rd.lvm.lv=%s: want VG/LV", v))
						continue
					}
					c.LVs = append(c.LVs, v)
				}
			}
		}
	}
	return c, warn
}

// MapName is the device-mapper name for the LUKS container uuid:
// rd.luks.name's, or "luks-UUID" like dracut and systemd-cryptsetup.
func (c Config) MapName(uuid string) string {
	if n, ok := c.Names[strings.ToLower(uuid)]; ok {
		return n
	}
	return "luks-" + uuid
}

// WantLUKS reports whether the container uuid is to be unlocked: LUKS is
// on and rd.luks.uuid= names it (or names none).
func (c Config) WantLUKS(uuid string) bool {
	if !c.LUKS || uuid == "" {
		return false
	}
	if len(c.LUKSUUIDs) == 0 {
		return true
	}
	for _, u := range c.LUKSUUIDs {
		if strings.EqualFold(u, uuid) {
			return true
		}
	}
	return false
}

// LogicalVolume returns the volume group and logical volume a root path
// names: /dev/VG/LV or /dev/mapper/VG-LV (with LVM's "--" for a dash in a
// name). ok is false for any other path.
func LogicalVolume(path string) (vg, lv string, ok bool) {
	rel, found := strings.CutPrefix(path, "/dev/")
	if !found {
		return "", "", false
	}
	if name, mapper := strings.CutPrefix(rel, "mapper/"); mapper {
		return SplitMapperName(name)
	}
	vg, lv, found = strings.Cut(rel, "/")
	switch {
	case !found || vg == "" || lv == "" || strings.Contains(lv, "/"):
		return "", "", false
	case vg == "disk" || vg == "mapper" || vg == "block" || vg == "char" || vg == "md" || vg == "bus" || vg == "pts":
		return "", "", false
	}
	return vg, lv, true
}

// SplitMapperName splits an LVM device-mapper name "VG-LV" at the single
// dash, undoing the "--" escaping of dashes inside either name.
func SplitMapperName(name string) (vg, lv string, ok bool) {
	for i := 0; i < len(name); i++ {
		if name[i] != '-' {
			continue
		}
		if i+1 < len(name) && name[i+1] == '-' {
			i++
			continue
		}
		vg, lv = name[:i], name[i+1:]
		if vg == "" || lv == "" {
			return "", "", false
		}
		return strings.ReplaceAll(vg, "--", "-"), strings.ReplaceAll(lv, "--", "-"), true
	}
	return "", "", false
}

// LVMArgs returns the lvm command lines that activate what the boot
// needs: the logical volumes of rd.lvm.lv=, else the volume groups of
// rd.lvm.vg= (plus the root's, when root= names a logical volume), else
// every volume group. lvm is the path of the lvm binary.
func (c Config) LVMArgs(lvm string, root cmdline.DeviceRef) [][]string {
	base := func(verb string) []string {
		return []string{lvm, verb, "-ay", "--sysinit", "--config", LVMConfig}
	}
	if len(c.LVs) > 0 {
		return [][]string{append(base("lvchange"), c.LVs...)}
	}
	vgs := append([]string(nil), c.VGs...)
	if len(vgs) > 0 && root.Kind == cmdline.Path {
		if vg, _, ok := LogicalVolume(root.Value); ok && !contains(vgs, vg) {
			vgs = append(vgs, vg)
		}
	}
	return [][]string{append(base("vgchange"), vgs...)}
}

// LVMConfig is the --config override that makes lvm work without udev and
// without a devices file.
const LVMConfig = "activation{udev_sync=0 udev_rules=0} devices{use_devicesfile=0 obtain_device_list_from_udev=0}"

// Env returns the environment the device-mapper tools run with:
// libdevmapper creates the /dev/mapper nodes itself instead of waiting for
// udev.
func Env() []string { return []string{"DM_DISABLE_UDEV=1", "LVM_SUPPRESS_FD_WARNINGS=1"} }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
