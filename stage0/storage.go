package stage0

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/pkginitrd/pkginitrd/internal/blkid"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/dm"
)

// luksModules are the modules (or aliases) dm-crypt with LUKS's default
// cipher needs; those built in or missing from the image are skipped.
func luksModules() []string {
	return []string{"dm_mod", "dm_crypt", "crypto-xts", "crypto-aes", "crypto-sha256", "algif_skcipher", "algif_hash"}
}

// storageSettings applies the image's features to the rd.luks/rd.lvm
// settings: a layer is only activated when its tools are in the image.
func storageSettings(c *cmdline.CmdLine, features func(string) bool) (dm.Config, []string) {
	conf, warn := dm.Parse(c.Features)
	for _, f := range c.Features {
		switch {
		case strings.HasPrefix(f.Key, "rd.luks") && conf.LUKS && !features("luks"):
			warn = append(warn, f.String()+": this image has no luks feature (build with --feature luks or --generic)")
		case strings.HasPrefix(f.Key, "rd.lvm") && conf.LVM && !features("lvm"):
			warn = append(warn, f.String()+": this image has no lvm feature (build with --feature lvm or --generic)")
		}
	}
	conf.LUKS = conf.LUKS && features("luks")
	conf.LVM = conf.LVM && features("lvm")
	return conf, warn
}

// storageStep announces the LUKS/LVM activation the root wait will do.
type storageStep struct {
	conf     dm.Config
	warnings []string
}

func (s storageStep) String() string {
	var on []string
	if s.conf.LUKS {
		what := "unlock LUKS containers"
		if len(s.conf.LUKSUUIDs) > 0 {
			what += " " + strings.Join(s.conf.LUKSUUIDs, ",")
		}
		on = append(on, what)
	}
	if s.conf.LVM {
		on = append(on, "activate LVM volume groups")
	}
	return strings.Join(on, " and ") + " when the root needs them (rd.luks, rd.lvm)"
}

// Run reports the ignored options and reads the image's crypttab (again
// on every retry: the user may have fixed it in the emergency shell).
func (s storageStep) Run(_ context.Context, b *boot) error {
	for _, w := range s.warnings {
		b.log.Warn("kernel command line: storage option ignored", "problem", w)
	}
	b.set.DM.Crypttab = nil
	if !b.set.DM.LUKS || !b.set.DM.UseCrypttab {
		return nil
	}
	data, err := b.sys.ReadFile(dm.CrypttabPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		b.log.Warn("cannot read the image's crypttab; ignoring it", "path", dm.CrypttabPath, "err", err)
		return nil
	}
	entries, warns := dm.ParseCrypttab(bytes.NewReader(data))
	for _, w := range warns {
		b.log.Warn("crypttab: entry or option ignored", "problem", w)
	}
	b.set.DM.Crypttab = entries
	b.log.Info("read the image's crypttab (rd.luks.crypttab=0 ignores it)", "path", dm.CrypttabPath, "entries", len(entries))
	return nil
}

// activation is what a device wait (scanFor) may do while its device is
// missing: open LUKS containers and activate LVM volume groups.
type activation struct {
	conf dm.Config // names, keys and options of the containers
	// open selects the LUKS containers to open while the device is
	// missing; byName, when set, is tried first, then lv.
	open, byName func(d *device.Device, u dm.Unlock) bool
	// intoContainer: when the device found is itself a LUKS container,
	// open it and wait for its mapping instead (root=, mount.usr=).
	intoContainer bool
	what          string // the option naming the device, for messages: "root=", "mount.usr="
	// checkLV fails the wait when LVM knows the volume group of a
	// logical volume ref names but not the volume (checkLV).
	checkLV bool
	// lv ("VG/LV"), if set, is activated once before the other
	// containers are opened, and again with new physical volumes:
	// rd.lvm.lv= may have named only the root's volume.
	lv     string
	lvDone bool
}

// rootActivation is the root's (and that of other devices named like it,
// by the option what: "resume=", "mount.usr="): every LUKS container
// rd.luks.uuid= asks for (every one seen when it names none, except those
// the image's crypttab marks noauto) and every volume group.
func (b *boot) rootActivation(what string) *activation {
	c := b.set.DM
	return &activation{conf: c, intoContainer: true, what: what, checkLV: true, open: func(d *device.Device, u dm.Unlock) bool {
		if !c.WantLUKS(d.Info.UUID) {
			return false
		}
		if len(c.LUKSUUIDs) == 0 && u.Entry != nil && u.Entry.Options.NoAuto {
			b.log.Info("not unlocking a container crypttab marks noauto", "container", d.Node, "name", u.Name)
			return false
		}
		return true
	}}
}

// activate is called by a device wait after each scan, with the device
// ref resolved to (nil: not there yet). It opens the LUKS containers and
// activates the LVM volume groups a allows and reports whether it did
// anything (then the devices are scanned again). When ref names a LUKS
// container itself, ref becomes its mapping. A nil a does nothing.
func (b *boot) activate(ctx context.Context, a *activation, devs []device.Device, ref *cmdline.DeviceRef, found *device.Device) (bool, error) {
	if a == nil {
		return false, nil
	}
	c := a.conf
	if found != nil {
		if !a.intoContainer || !c.LUKS || found.Info == nil || found.Info.Type != "crypto_LUKS" {
			return false, nil
		}
		u := b.unlockFor(c, found, devs)
		if err := b.openLUKS(ctx, found, u); err != nil {
			return false, err
		}
		*ref = cmdline.DeviceRef{Kind: cmdline.Path, Value: "/dev/mapper/" + u.Name, Raw: "/dev/mapper/" + u.Name}
		b.log.Info(a.what+" names a LUKS container; waiting for its mapping", "device", ref.String())
		return true, b.linkMappings()
	}
	// In order, each only when the one before did nothing: the container
	// named, the logical volume named (once), the other containers a
	// allows, then the volume groups on physical volumes not seen yet.
	did, err := b.unlockSelected(ctx, a, a.byName, devs)
	if err != nil {
		return false, err
	}
	if c.LVM && !did && a.lv != "" && !a.lvDone {
		a.lvDone = true
		b.activateLVM(ctx, dm.Config{LVs: []string{a.lv}}, *ref)
		did = true
	}
	if !did {
		if did, err = b.unlockSelected(ctx, a, a.open, devs); err != nil {
			return false, err
		}
	}
	if c.LVM && !did && b.freshPVs(devs) {
		b.activateLVM(ctx, c, *ref)
		if a.lv != "" && (len(c.LVs) > 0 || len(c.VGs) > 0) {
			// rd.lvm.lv=/rd.lvm.vg= may leave out the volume named.
			b.activateLVM(ctx, dm.Config{LVs: []string{a.lv}}, *ref)
		}
		if a.checkLV {
			if err := b.checkLV(ctx, *ref); err != nil {
				return false, err
			}
		}
		did = true
	}
	if !did {
		return false, nil
	}
	return true, b.linkMappings()
}

// unlockSelected opens the LUKS containers in devs that sel selects and
// that are not open yet. A nil sel opens none.
func (b *boot) unlockSelected(ctx context.Context, a *activation, sel func(*device.Device, dm.Unlock) bool, devs []device.Device) (bool, error) {
	if !a.conf.LUKS || sel == nil {
		return false, nil
	}
	maps, err := b.sys.Mappings()
	if err != nil {
		b.log.Debug("cannot list device-mapper devices", "err", err)
	}
	did := false
	for i := range devs {
		d := &devs[i]
		if d.Info == nil || d.Info.Type != "crypto_LUKS" || d.Info.UUID == "" || containerMapping(maps, d.Info.UUID) != nil {
			continue
		}
		u := b.unlockFor(a.conf, d, devs)
		if hasMapping(maps, u.Name) || !sel(d, u) {
			continue
		}
		if err := b.openLUKS(ctx, d, u); err != nil {
			return false, err
		}
		did = true
	}
	return did, nil
}

// freshPVs reports whether devs holds LVM physical volumes that LVM
// activation has not run for yet, and marks them.
func (b *boot) freshPVs(devs []device.Device) bool {
	fresh := false
	for i := range devs {
		d := &devs[i]
		if d.Info != nil && d.Info.Type == "LVM2_member" && !b.lvmSeen[d.Node+" "+d.Info.UUID] {
			if b.lvmSeen == nil {
				b.lvmSeen = map[string]bool{}
			}
			b.lvmSeen[d.Node+" "+d.Info.UUID] = true
			fresh = true
		}
	}
	return fresh
}

// mapped reports whether a device-mapper device called name exists.
func (b *boot) mapped(name string) bool {
	maps, err := b.sys.Mappings()
	if err != nil {
		return false
	}
	for _, m := range maps {
		if m.Name == name {
			return true
		}
	}
	return false
}

func (b *boot) linkMappings() error {
	maps, err := b.sys.Mappings()
	if err == nil {
		err = b.sys.LinkMappings(maps)
	}
	if err != nil {
		b.log.Warn("cannot create the /dev/mapper links", "err", err)
	}
	return nil
}

// tool returns the first of the image paths of a tool that exists.
func (b *boot) tool(name string) (string, error) {
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if p := dir + "/" + name; b.sys.Exists(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not in the image (its feature's packages are missing)", name)
}

func (b *boot) loadQuietly(ctx context.Context, names []string) {
	if err := b.loader.Load(ctx, names...); err != nil {
		b.log.Debug("modules: not all loaded (they may be built in)", "modules", names, "err", err)
	}
}

// unlockFor decides how to open the container on d: its name, keys and
// options from the command line and the crypttab (dm.Config.For).
func (b *boot) unlockFor(c dm.Config, d *device.Device, devs []device.Device) dm.Unlock {
	return c.For(d.Info.UUID, func(r cmdline.DeviceRef) bool {
		if r.Kind == cmdline.Path {
			m, _ := device.Resolve(devRoot, devs, r)
			return m != nil && m.Node == d.Node
		}
		for _, m := range device.Find(devs, r) {
			if m.Node == d.Node {
				return true
			}
		}
		return false
	})
}

func (b *boot) openLUKS(ctx context.Context, d *device.Device, u dm.Unlock) error {
	if b.mapped(u.Name) {
		return nil
	}
	cryptsetup, err := b.tool("cryptsetup")
	if err != nil {
		return fmt.Errorf("unlock %s: %w", d.Node, err)
	}
	if u.Entry != nil {
		b.log.Info("LUKS container listed in the crypttab", "device", d.Node, "line", u.Entry.Line, "name", u.Name)
	}
	b.loadQuietly(ctx, luksModules())
	sys := b.sys
	sys.Ask = func(ctx context.Context, prompt string) ([]byte, error) {
		b.refreshFont()
		return b.sys.Ask(ctx, prompt)
	}
	un := dm.Unlocker{Sys: sys, Log: b.log, Cryptsetup: cryptsetup, ReadKey: b.readKey}
	return un.Open(ctx, dm.Container{Node: d.Node, UUID: d.Info.UUID, Label: d.Info.Label, Name: u.Name}, u)
}

// readKey reads a keyfile from the image, or from its key device: waited
// for (rd.luks.key.tout=), mounted read-only just long enough to read it.
func (b *boot) readKey(ctx context.Context, k dm.Key) ([]byte, error) {
	if k.Device.Kind == cmdline.None {
		return b.sys.ReadFile(k.Path)
	}
	d, err := b.waitKeyDevice(ctx, k.Device)
	if err != nil {
		return nil, err
	}
	if d.Info == nil || d.Info.Usage != blkid.UsageFilesystem {
		return nil, fmt.Errorf("the key device %s (%s) holds no filesystem stage0 can mount", k.Device, d)
	}
	fsType := d.Info.Type
	mods := []string{"fs-" + fsType}
	if fsType == "vfat" {
		mods = append(mods, "nls_cp437", "nls_utf8")
	}
	b.loadQuietly(ctx, mods)
	b.log.Info("reading a keyfile from its key device", "keyfile", k.Path, "device", d.Node, "type", fsType)
	return b.sys.ReadDeviceFile(ctx, d.Node, fsType, k.Path)
}

// waitKeyDevice waits for a key device, for at most the key timeout;
// then the error wraps dm.ErrNoKeyDevice. It never opens LUKS containers:
// it runs while one is being opened, for its key.
func (b *boot) waitKeyDevice(ctx context.Context, ref cmdline.DeviceRef) (*device.Device, error) {
	timeout := b.set.DM.KeyTimeout
	if timeout == 0 {
		timeout = dm.DefaultKeyTimeout
	}
	d, err := b.waitOther(ctx, &ref, timeout, nil, "the key device", "rd.luks.key.tout=")
	var missing *notThereError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("%w: %w", dm.ErrNoKeyDevice, err)
	}
	return d, err
}

// activateLVM runs lvm for what conf names; failures are logged, since
// the wait reports a device that did not appear.
func (b *boot) activateLVM(ctx context.Context, conf dm.Config, root cmdline.DeviceRef) {
	lvm, err := b.tool("lvm")
	if err != nil {
		b.log.Warn("LVM physical volumes found but they cannot be activated", "err", err)
		return
	}
	b.loadQuietly(ctx, []string{"dm_mod"})
	for _, argv := range conf.LVMArgs(lvm, root) {
		b.log.Info("activating LVM", "argv", strings.Join(argv, " "))
		out, code, err := b.sys.Run(ctx, argv, dm.Env(), nil)
		if err != nil || code != 0 {
			b.log.Warn("LVM activation failed", "argv", strings.Join(argv, " "), "status", code, "err", err, "output", strings.TrimSpace(string(out)))
		}
	}
}

// listLVs returns the logical volumes LVM knows, as "VG/LV".
func (b *boot) listLVs(ctx context.Context) ([]string, error) {
	lvm, err := b.tool("lvm")
	if err != nil {
		return nil, err
	}
	out, code, err := b.sys.Run(ctx, dm.LVsArgs(lvm), dm.Env(), nil)
	if err != nil || code != 0 {
		return nil, fmt.Errorf("lvm lvs: status %d: %v: %s", code, err, strings.TrimSpace(string(out)))
	}
	return dm.ParseLVs(out), nil
}

// checkLV fails when root= names a logical volume that its volume group,
// known to LVM, does not have. A volume group not seen yet is not an
// error: its physical volumes may still be on their way.
func (b *boot) checkLV(ctx context.Context, ref cmdline.DeviceRef) error {
	if ref.Kind != cmdline.Path {
		return nil
	}
	vg, lv, ok := dm.LogicalVolume(ref.Value)
	if !ok {
		return nil
	}
	lvs, err := b.listLVs(ctx)
	if err != nil {
		b.log.Debug("cannot list the logical volumes", "err", err)
		return nil
	}
	hasVG := false
	for _, l := range lvs {
		if l == vg+"/"+lv {
			return nil
		}
		hasVG = hasVG || strings.HasPrefix(l, vg+"/")
	}
	if !hasVG {
		return nil
	}
	return fmt.Errorf("root=%s: the volume group %s has no logical volume %s (logical volumes found: %s)", ref, vg, lv, strings.Join(lvs, ", "))
}

// storageHint explains a root timeout in terms of the LUKS containers
// rd.luks.uuid= asked for and that never showed up, and of the logical
// volumes LVM knows when root= names one.
func (b *boot) storageHint(devs []device.Device) string {
	return b.luksHint(devs) + b.lvmHint()
}

func (b *boot) lvmHint() string {
	if !b.set.DM.LVM || b.waiting.Kind != cmdline.Path {
		return ""
	}
	vg, lv, ok := dm.LogicalVolume(b.waiting.Value)
	if !ok {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lvs, err := b.listLVs(ctx)
	switch {
	case err != nil:
		return ""
	case len(lvs) == 0:
		return fmt.Sprintf("; no logical volume %s/%s: LVM found no logical volumes", vg, lv)
	}
	return fmt.Sprintf("; no logical volume %s/%s (logical volumes found: %s)", vg, lv, strings.Join(lvs, ", "))
}

func (b *boot) luksHint(devs []device.Device) string {
	var missing []string
	for _, u := range b.set.DM.LUKSUUIDs {
		found := false
		for i := range devs {
			if devs[i].Info != nil && devs[i].Info.Type == "crypto_LUKS" && strings.EqualFold(devs[i].Info.UUID, u) {
				found = true
			}
		}
		if !found {
			missing = append(missing, u)
		}
	}
	if len(missing) == 0 || !b.set.DM.LUKS {
		return ""
	}
	return "; LUKS container rd.luks.uuid=" + strings.Join(missing, ",") + " not found"
}
