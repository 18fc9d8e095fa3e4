// Package dm activates the device-mapper layers a root can sit on, with
// the distribution's own tools run without udev: LUKS1 and LUKS2
// containers through `cryptsetup open` (passphrase typed at the console, or
// a keyfile in the image or on a key device) and LVM volume groups through
// `lvm vgchange -ay --sysinit`. It reads dracut's and systemd's rd.luks* and
// rd.lvm* options and the image's /etc/crypttab, and creates the
// /dev/mapper/NAME and /dev/VG/LV links udev would have made.
//
// How a container is opened is decided per container (Config.For), each
// setting from the first source that has it:
//
//   - mapping name: rd.luks.name=UUID=NAME, the crypttab line's name,
//     "luks-UUID";
//   - keys: the rd.luks.key= keys for this container (systemd's
//     rd.luks.key=UUID=PATH, dracut's PATH:KEYDEV:LUKSDEV), else the
//     rd.luks.key= keys for any container, else the crypttab keyfile; the
//     passphrase is asked when there is none, or none fits;
//   - options: rd.luks.options=UUID=OPTS, the crypttab options, the global
//     rd.luks.options=OPTS (as systemd-cryptsetup-generator does).
//
// The crypttab is ignored with rd.luks.crypttab=0 (dracut's option). It
// names and configures containers; which containers are opened is still
// decided by rd.luks.uuid= (every LUKS device seen when absent).
//
// Decisions are pure functions of the command line, the crypttab and the
// probed devices; the commands, the console, key devices and /dev go
// through machine.Machine.
package dm

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
)

// DefaultKeyTimeout is how long a key device is waited for before the
// passphrase is asked instead (rd.luks.key.tout= changes it).
const DefaultKeyTimeout = 15 * time.Second

// Config is what the rd.luks* and rd.lvm* options ask for.
type Config struct {
	LUKS bool // rd.luks (default on); false with rd.luks=0
	// LUKSUUIDs restricts unlocking to these containers (rd.luks.uuid=,
	// "luks-" prefix removed); empty means every LUKS device seen.
	LUKSUUIDs []string
	// Names maps a container UUID to its mapping name (rd.luks.name=UUID=NAME).
	Names map[string]string
	// Keys are the rd.luks.key= keyfiles, in command-line order.
	Keys []Key
	// KeyTimeout is how long to wait for a key device (rd.luks.key.tout=,
	// seconds); 0 means DefaultKeyTimeout.
	KeyTimeout time.Duration
	// Options is the global rd.luks.options=; nil when not given.
	Options *Options
	// UUIDOptions are systemd's rd.luks.options=UUID=OPTS, by lower-case UUID.
	UUIDOptions map[string]Options
	// UseCrypttab is rd.luks.crypttab (default on): read the image's
	// /etc/crypttab into Crypttab.
	UseCrypttab bool
	// Crypttab is the image's crypttab, filled in by the boot.
	Crypttab []CrypttabEntry

	LVM bool     // rd.lvm (default on); false with rd.lvm=0
	VGs []string // rd.lvm.vg=: activate only these volume groups
	LVs []string // rd.lvm.lv=VG/LV: activate only these logical volumes
}

// Key is a keyfile: a path inside the image, or on a key device.
type Key struct {
	Path   string
	Device cmdline.DeviceRef // the key device; Kind None: the image itself
	// ForUUID limits the key to one container (systemd's rd.luks.key=UUID=PATH);
	// ForDevice to the container on that device (dracut's third field).
	ForUUID   string
	ForDevice cmdline.DeviceRef
	Origin    string // where it was given, for messages: "rd.luks.key=…", "/etc/crypttab line 3"
	// Fallback makes a key that cannot be read a message, then the
	// passphrase, instead of an error: crypttab keyfiles often live on
	// the real root, not in the image.
	Fallback bool
}

// String is the key as dracut writes it: PATH or PATH:KEYDEVICE.
func (k Key) String() string {
	if k.Device.Kind == cmdline.None {
		return k.Path
	}
	return k.Path + ":" + k.Device.String()
}

// Parse reads the rd.luks* and rd.lvm* tokens of the command line (see
// cmdline.CmdLine.Features); the strings are warnings about values ignored.
func Parse(features []cmdline.Param) (Config, []string) {
	c := Config{LUKS: true, LVM: true, UseCrypttab: true, Names: map[string]string{}}
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
		case "rd.luks.crypttab":
			c.UseCrypttab = boolVal(p)
		case "rd.luks.uuid":
			for _, u := range strings.Split(p.Value, ",") {
				if u = strings.TrimPrefix(strings.TrimSpace(u), "luks-"); u != "" {
					c.LUKSUUIDs = append(c.LUKSUUIDs, u)
				}
			}
		case "rd.luks.name":
			uuid, name, ok := strings.Cut(trimUUIDKey(p.Value), "=")
			uuid = strings.TrimPrefix(uuid, "luks-")
			if !ok || uuid == "" || name == "" || strings.Contains(name, "/") {
				warn = append(warn, fmt.Sprintf("rd.luks.name=%s: want UUID=NAME", p.Value))
				continue
			}
			c.Names[strings.ToLower(uuid)] = name
			c.LUKSUUIDs = append(c.LUKSUUIDs, uuid)
		case "rd.luks.key":
			k, err := parseKey(p.Value)
			if err != nil {
				warn = append(warn, fmt.Sprintf("rd.luks.key=%s: %v", p.Value, err))
				continue
			}
			c.Keys = append(c.Keys, k)
		case "rd.luks.key.tout":
			n, err := strconv.Atoi(p.Value)
			if err != nil || n < 0 {
				warn = append(warn, fmt.Sprintf("rd.luks.key.tout=%s: want seconds", p.Value))
				continue
			}
			c.KeyTimeout = time.Duration(n) * time.Second
		case "rd.luks.options":
			v := p.Value
			uuid, rest, perUUID := cutUUID(v)
			if perUUID {
				v = rest
			}
			o, unknown := ParseOptions(v)
			if len(unknown) > 0 {
				warn = append(warn, fmt.Sprintf("rd.luks.options=%s: options not supported, ignored: %s", p.Value, strings.Join(unknown, ",")))
			}
			if perUUID {
				if c.UUIDOptions == nil {
					c.UUIDOptions = map[string]Options{}
				}
				c.UUIDOptions[strings.ToLower(uuid)] = o
			} else {
				c.Options = &o
			}
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

// parseKey reads an rd.luks.key= value: dracut's PATH[:KEYDEV[:LUKSDEV]]
// or systemd's UUID=PATH[:KEYDEV].
func parseKey(v string) (Key, error) {
	var uuid string
	if !strings.HasPrefix(v, "/") {
		u, rest, ok := strings.Cut(trimUUIDKey(v), "=")
		if !ok || !strings.HasPrefix(rest, "/") {
			return Key{}, fmt.Errorf("want PATH[:KEYDEVICE] (an absolute path inside the image or on the key device) or LUKS-UUID=PATH[:KEYDEVICE]")
		}
		uuid, v = strings.TrimPrefix(u, "luks-"), rest
	}
	k, err := splitKey(v)
	if err != nil {
		return Key{}, err
	}
	k.ForUUID = uuid
	k.Origin = "rd.luks.key=" + v
	if uuid != "" {
		k.Origin = "rd.luks.key=" + uuid + "=" + v
	}
	return k, nil
}

// trimUUIDKey removes a leading "UUID=" from UUID=VALUE forms.
func trimUUIDKey(v string) string {
	if len(v) > 5 && strings.EqualFold(v[:5], "UUID=") {
		return v[5:]
	}
	return v
}

// cutUUID splits systemd's "UUID=REST" (with an optional "luks-" or
// "UUID=" before the UUID); ok is false when v does not start with a UUID.
func cutUUID(v string) (uuid, rest string, ok bool) {
	u, rest, found := strings.Cut(trimUUIDKey(v), "=")
	u = strings.TrimPrefix(u, "luks-")
	if !found || !isUUID(u) {
		return "", "", false
	}
	return u, rest, true
}

// isUUID reports whether s is a textual UUID (8-4-4-4-12 hex digits).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

// Unlock is how one container is to be opened (see the package doc for
// where each setting comes from).
type Unlock struct {
	Name    string
	Keys    []Key // tried in order before the passphrase
	Options Options
	Entry   *CrypttabEntry // the crypttab line for the container, if any
}

// For decides how to open the container uuid. isDevice reports whether a
// device reference (a crypttab DEVICE, dracut's LUKSDEV) names the
// container's device; UUID= references are also compared with uuid.
func (c Config) For(uuid string, isDevice func(cmdline.DeviceRef) bool) Unlock {
	names := func(r cmdline.DeviceRef) bool {
		if r.Kind == cmdline.UUID && strings.EqualFold(strings.TrimPrefix(r.Value, "luks-"), uuid) {
			return true
		}
		return isDevice != nil && isDevice(r)
	}
	var u Unlock
	for i := range c.Crypttab {
		if names(c.Crypttab[i].Device) {
			u.Entry = &c.Crypttab[i]
			break
		}
	}
	switch n, ok := c.Names[strings.ToLower(uuid)]; {
	case ok:
		u.Name = n
	case u.Entry != nil:
		u.Name = u.Entry.Name
	default:
		u.Name = "luks-" + uuid
	}
	var mine, any []Key
	for _, k := range c.Keys {
		switch {
		case k.ForUUID != "":
			if strings.EqualFold(k.ForUUID, uuid) {
				mine = append(mine, k)
			}
		case k.ForDevice.Kind != cmdline.None:
			if names(k.ForDevice) {
				mine = append(mine, k)
			}
		default:
			any = append(any, k)
		}
	}
	switch {
	case len(mine)+len(any) > 0:
		u.Keys = append(mine, any...)
	case u.Entry != nil && u.Entry.Key != nil:
		k := *u.Entry.Key
		k.Fallback = true
		u.Keys = []Key{k}
	}
	switch o, ok := c.UUIDOptions[strings.ToLower(uuid)]; {
	case ok:
		u.Options = o
	case u.Entry != nil:
		u.Options = u.Entry.Options
	case c.Options != nil:
		u.Options = *c.Options
	}
	return u
}

// MapName is the device-mapper name for the LUKS container uuid:
// rd.luks.name's, the crypttab's (for a UUID= entry), or "luks-UUID" like
// dracut and systemd-cryptsetup.
func (c Config) MapName(uuid string) string { return c.For(uuid, nil).Name }

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

// LVsArgs is the lvm command line that lists every logical volume as
// "VG/LV" lines (see ParseLVs).
func LVsArgs(lvm string) []string {
	return []string{lvm, "lvs", "--noheadings", "--separator", "/", "-o", "vg_name,lv_name", "--config", LVMConfig}
}

// ParseLVs reads the output of LVsArgs.
func ParseLVs(out []byte) []string {
	var lvs []string
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if vg, lv, ok := strings.Cut(l, "/"); ok && vg != "" && lv != "" && !strings.ContainsAny(l, " \t") {
			lvs = append(lvs, l)
		}
	}
	return lvs
}
