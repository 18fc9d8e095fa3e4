package stage0

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pkginitrd/pkginitrd/internal/kmod"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/dm"
	"github.com/pkginitrd/pkginitrd/stage0/live"
	"github.com/pkginitrd/pkginitrd/stage0/mount"
)

// step is one piece of boot work. The plan is a list of steps, logged by
// String() as they run.
type step interface {
	String() string
	Run(ctx context.Context, b *boot) error
}

// bootSettings are the boot decisions taken from the command line and the
// image config before anything runs.
type bootSettings struct {
	Root       cmdline.DeviceRef
	RootFSType string // "" = probe
	RootFlags  string
	RootMode   string // "ro", "rw" or "" (ro unless rootflags say rw)
	Timeout    time.Duration
	Init       string
	InitArgs   []string
	ForceLoad  []string // rd.modules-load= and the image's force_load
	Fsck       map[string]string
	FsckMode   string
	FsckRepair string
	// Live is the live/overlay root plan; LiveErr why root=live: is unusable.
	Live    live.Plan
	LiveErr error
	// DM is what to unlock and activate (rd.luks*, rd.lvm*, limited to
	// the image's features); DMWarnings the options it ignored.
	DM         dm.Config
	DMWarnings []string
	// Resume is where to look for a hibernation image (resume.go).
	Resume resumeSettings
	// Console is the keymap and font to load (vconsole.go).
	Console vconsole
	// Fstab: use the real root's /etc/fstab (rd.fstab=0 turns it off).
	Fstab bool
	// Usr is the /usr of mount.usr= and friends (usr.go).
	Usr usrSettings
}

// settings merges the command line over the image config: root=, when
// given, brings its own rootfstype=/rootflags=; otherwise the host's root
// settings recorded in a host-only image apply (each overridable).
func settings(c *cmdline.CmdLine, conf *bootconf.Config) (bootSettings, error) {
	s := bootSettings{
		Root:       c.Root,
		RootFSType: c.RootFSType,
		RootFlags:  c.RootFlags,
		RootMode:   c.RootMode,
		Timeout:    c.Timeout,
		Init:       c.Init,
		InitArgs:   c.InitArgs,
		Fsck:       conf.Fsck,
		FsckMode:   c.FsckMode,
		FsckRepair: c.FsckRepair,
		Fstab:      true,
	}
	for _, p := range c.Params {
		if v, ok := p.Bool(); ok && p.Key == "rd.fstab" {
			s.Fstab = v // the last one wins
		}
	}
	var err error
	if s.Root.Kind == cmdline.None && conf.Root.Device != "" {
		if s.Root, err = cmdline.ParseDeviceRef(conf.Root.Device); err != nil {
			err = fmt.Errorf("image config root device: %w", err)
		}
		if s.RootFSType == "" {
			s.RootFSType = conf.Root.FSType
		}
		if s.RootFlags == "" {
			s.RootFlags = conf.Root.Flags
		}
	}
	s.Live, s.LiveErr = live.Parse(c)
	s.DM, s.DMWarnings = storageSettings(c, conf.HasFeature)
	s.Resume = resumeFrom(c, conf)
	s.Console = vconsoleFrom(c, conf)
	if s.Live.Mode == live.Overlay {
		s.RootMode = "ro" // the lower layer
	}
	if s.RootFSType == "auto" {
		s.RootFSType = ""
	}
	if s.Live.Mode == live.Off {
		s.Usr = usrFrom(c, s.Root, s.RootFSType, s.RootFlags)
	} else if usrGiven(c) {
		s.Live.Warnings = append(s.Live.Warnings, "mount.usr=, mount.usrfstype= and mount.usrflags= do not apply to a live or overlay root")
	}
	seen := map[string]bool{}
	for _, m := range append(append([]string(nil), c.ModulesLoad...), conf.ForceLoad...) {
		if m = kmod.Normalize(m); !seen[m] {
			seen[m] = true
			s.ForceLoad = append(s.ForceLoad, m)
		}
	}
	return s, err
}

// plan returns the boot steps after the early setup, and the index to
// retry from after the emergency shell: the uevent listener, so modules
// the user added and devices that showed up late are picked up again.
func plan(s bootSettings, c *cmdline.CmdLine) (steps []step, retryFrom int) {
	steps = append(steps, hotplugStep{})
	if len(s.ForceLoad) > 0 {
		steps = append(steps, loadStep{names: s.ForceLoad})
	}
	steps = append(steps, coldplugStep{})
	if s.Console.needed() {
		steps = append(steps, vconsoleStep{s.Console})
	}
	if s.DM.LUKS || s.DM.LVM || len(s.DMWarnings) > 0 {
		steps = append(steps, storageStep{conf: s.DM, warnings: s.DMWarnings})
	}
	if s.Resume.Device.Kind != cmdline.None || len(s.Resume.Warnings) > 0 {
		steps = append(steps, &resumeStep{r: s.Resume, timeout: resumeTimeout(s.Timeout)})
	}
	if s.Live.Mode == live.Image {
		return append(steps, livePlan(s, c)...), 0
	}
	steps = append(steps, waitRootStep{ref: s.Root, timeout: s.Timeout})
	if c.HasBreak("pre-mount") {
		steps = append(steps, breakStep{hook: "pre-mount"})
	}
	if s.FsckMode != "skip" {
		steps = append(steps, fsckStep{mode: s.FsckMode, repair: s.FsckRepair})
	}
	steps = append(steps, mountRootStep{s: s})
	if s.Live.Mode == live.Overlay {
		steps = append(steps, overlayRootStep{plan: s.Live})
	} else if s.Fstab || s.Usr.Device.Kind != cmdline.None || len(s.Usr.Warnings) > 0 {
		steps = append(steps, fstabStep{fstab: s.Fstab, usr: s.Usr})
	}
	if s.DM.LUKS {
		steps = append(steps, crypttabNamesStep{})
	}
	if breakBeforeSwitch(c) {
		steps = append(steps, breakStep{hook: "pre-pivot"})
	}
	steps = append(steps, switchRootStep{init: s.Init, args: s.InitArgs})
	return steps, 0
}

// supportedBreak reports the rd.break= hooks the plan stops at: dracut's
// pre-mount, and pre-pivot (mount, cleanup and pre-switch-root are the
// same point here: the root is mounted, switch_root comes next).
func supportedBreak(hook string) bool {
	switch hook {
	case "pre-mount", "pre-pivot", "mount", "cleanup", "pre-switch-root":
		return true
	}
	return false
}

func breakBeforeSwitch(c *cmdline.CmdLine) bool {
	for _, h := range c.Break {
		if h != "pre-mount" && supportedBreak(h) {
			return true
		}
	}
	return false
}

// earlyMounts are the API filesystems, mounted before anything else.
func earlyMounts() []step {
	var steps []step
	for _, m := range mount.API() {
		steps = append(steps, mountStep{m})
	}
	return steps
}

type mountStep struct{ m mount.Mount }

func (s mountStep) String() string { return "mount " + s.m.String() }

func (s mountStep) Run(_ context.Context, b *boot) error {
	err := b.sys.Mount(s.m)
	if err != nil && s.m.Optional {
		b.log.Warn("optional mount failed", "target", s.m.Target, "err", err)
		return nil
	}
	return err
}

type hotplugStep struct{}

func (hotplugStep) String() string { return "listen for device events (hotplug)" }

func (hotplugStep) Run(ctx context.Context, b *boot) error {
	b.startHotplug(ctx)
	return nil
}

type loadStep struct{ names []string }

func (s loadStep) String() string {
	return "load modules " + strings.Join(s.names, " ") + " (rd.modules-load=, force_load)"
}

func (s loadStep) Run(ctx context.Context, b *boot) error {
	if err := b.loader.Load(ctx, s.names...); err != nil {
		b.log.Warn("some requested modules did not load", "err", err)
	}
	return nil
}

type coldplugStep struct{}

func (coldplugStep) String() string { return "coldplug: load modules for the devices present" }

func (coldplugStep) Run(ctx context.Context, b *boot) error {
	b.coldplug(ctx)
	return nil
}

type waitRootStep struct {
	ref     cmdline.DeviceRef
	timeout time.Duration
}

func (s waitRootStep) String() string {
	limit := "forever"
	if s.timeout > 0 {
		limit = "up to " + s.timeout.String()
	}
	return fmt.Sprintf("wait %s for the root device %s", limit, s.ref)
}

func (s waitRootStep) Run(ctx context.Context, b *boot) error {
	return b.waitRoot(ctx, s.ref, s.timeout)
}

type breakStep struct{ hook string }

func (s breakStep) String() string { return "rd.break=" + s.hook + ": shell" }

func (s breakStep) Run(ctx context.Context, b *boot) error {
	what := map[string]string{"pre-mount": "before mounting the root", "pre-pivot": "before switch_root"}[s.hook]
	_ = b.shell(ctx, fmt.Sprintf("rd.break=%s: starting a shell %s; exit it to continue booting", s.hook, what))
	return nil
}

type fsckStep struct{ mode, repair string }

func (s fsckStep) String() string {
	mode := s.mode
	if mode == "" {
		mode = "auto"
	}
	return "check the root filesystem if its checker is in the image (fsck.mode=" + mode + ")"
}

func (s fsckStep) Run(ctx context.Context, b *boot) error { return b.fsck(ctx, s.mode, s.repair) }

type mountRootStep struct{ s bootSettings }

func (s mountRootStep) String() string {
	fsType := s.s.RootFSType
	if fsType == "" {
		fsType = "probed"
	}
	mode := s.s.RootMode
	if mode == "" {
		mode = "ro"
		if strings.Contains(","+s.s.RootFlags+",", ",rw,") {
			mode = "rw"
		}
	}
	str := fmt.Sprintf("mount root %s on %s (type %s, %s", s.s.Root, newRoot, fsType, mode)
	if s.s.RootFlags != "" {
		str += ", rootflags=" + s.s.RootFlags
	}
	return str + ")"
}

func (s mountRootStep) Run(ctx context.Context, b *boot) error { return b.mountRoot(ctx) }

type switchRootStep struct {
	init string
	args []string
}

func (s switchRootStep) String() string {
	init := s.init
	if init == "" {
		init = "/sbin/init"
	}
	str := "switch_root to " + newRoot + " and exec " + init
	if len(s.args) > 0 {
		str += " " + strings.Join(s.args, " ")
	}
	return str
}

func (s switchRootStep) Run(ctx context.Context, b *boot) error {
	return b.switchRoot(ctx, s.init, s.args)
}

var (
	_ step = mountStep{}
	_ step = hotplugStep{}
	_ step = loadStep{}
	_ step = coldplugStep{}
	_ step = waitRootStep{}
	_ step = breakStep{}
	_ step = fsckStep{}
	_ step = mountRootStep{}
	_ step = switchRootStep{}
)
