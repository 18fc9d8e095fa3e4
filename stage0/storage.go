package stage0

import (
	"context"
	"fmt"
	"strings"

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

func (s storageStep) Run(_ context.Context, b *boot) error {
	for _, w := range s.warnings {
		b.log.Warn("kernel command line: storage option ignored", "problem", w)
	}
	return nil
}

// activate is called by the root wait after each scan. It opens the LUKS
// containers and activates the LVM volume groups the root may be on and
// reports whether it did anything (then the devices are scanned again).
// When root= names a LUKS container itself, ref becomes its mapping.
func (b *boot) activate(ctx context.Context, devs []device.Device, ref *cmdline.DeviceRef, root *device.Device) (bool, error) {
	c := b.set.DM
	if root != nil {
		if c.LUKS && root.Info != nil && root.Info.Type == "crypto_LUKS" {
			name := c.MapName(root.Info.UUID)
			if err := b.openLUKS(ctx, root, name); err != nil {
				return false, err
			}
			*ref = cmdline.DeviceRef{Kind: cmdline.Path, Value: "/dev/mapper/" + name, Raw: "/dev/mapper/" + name}
			b.log.Info("root= names a LUKS container; waiting for its mapping", "root", ref.String())
			return true, b.linkMappings()
		}
		return false, nil
	}
	did := false
	if c.LUKS {
		for i := range devs {
			d := &devs[i]
			if d.Info == nil || d.Info.Type != "crypto_LUKS" || !c.WantLUKS(d.Info.UUID) {
				continue
			}
			name := c.MapName(d.Info.UUID)
			if b.mapped(name) {
				continue
			}
			if err := b.openLUKS(ctx, d, name); err != nil {
				return false, err
			}
			did = true
		}
	}
	if c.LVM {
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
		if fresh {
			b.activateLVM(ctx, *ref)
			did = true
		}
	}
	if !did {
		return false, nil
	}
	return true, b.linkMappings()
}

// mapped reports whether a device-mapper device called name exists.
func (b *boot) mapped(name string) bool {
	maps, err := b.sys.DM.Mappings()
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
	maps, err := b.sys.DM.Mappings()
	if err == nil {
		err = b.sys.DM.Link(maps)
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

func (b *boot) openLUKS(ctx context.Context, d *device.Device, name string) error {
	if b.mapped(name) {
		return nil
	}
	cryptsetup, err := b.tool("cryptsetup")
	if err != nil {
		return fmt.Errorf("unlock %s: %w", d.Node, err)
	}
	b.loadQuietly(ctx, luksModules())
	u := dm.Unlocker{Sys: b.sys.DM, Log: b.log, Cryptsetup: cryptsetup}
	return u.Open(ctx, dm.Container{Node: d.Node, UUID: d.Info.UUID, Label: d.Info.Label, Name: name}, b.set.DM.KeyFile)
}

// activateLVM runs lvm; failures are logged, since the root wait reports
// a root that did not appear.
func (b *boot) activateLVM(ctx context.Context, root cmdline.DeviceRef) {
	lvm, err := b.tool("lvm")
	if err != nil {
		b.log.Warn("LVM physical volumes found but they cannot be activated", "err", err)
		return
	}
	b.loadQuietly(ctx, []string{"dm_mod"})
	for _, argv := range b.set.DM.LVMArgs(lvm, root) {
		b.log.Info("activating LVM", "argv", strings.Join(argv, " "))
		out, code, err := b.sys.DM.Run(ctx, argv, dm.Env(), nil)
		if err != nil || code != 0 {
			b.log.Warn("LVM activation failed", "argv", strings.Join(argv, " "), "status", code, "err", err, "output", strings.TrimSpace(string(out)))
		}
	}
}

// storageHint explains a root timeout in terms of the LUKS containers
// rd.luks.uuid= asked for and that never showed up.
func (b *boot) storageHint(devs []device.Device) string {
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
