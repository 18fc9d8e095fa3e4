package stage0

import (
	"context"
	"fmt"

	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/live"
)

// livePlan is the rest of the plan for root=live:…: wait for the medium,
// build the overlay root on /sysroot, switch.
func livePlan(s bootSettings, c *cmdline.CmdLine) []step {
	var steps []step
	if s.LiveErr != nil {
		return append(steps, failStep{what: "use the live root " + s.Root.String(), err: s.LiveErr})
	}
	steps = append(steps, waitRootStep{ref: s.Live.Medium, timeout: s.Timeout})
	if c.HasBreak("pre-mount") {
		steps = append(steps, breakStep{hook: "pre-mount"})
	}
	steps = append(steps, liveRootStep{plan: s.Live})
	if breakBeforeSwitch(c) {
		steps = append(steps, breakStep{hook: "pre-pivot"})
	}
	return append(steps, switchRootStep{init: s.Init, args: s.InitArgs})
}

// failStep stops the boot with an error known when planning.
type failStep struct {
	what string
	err  error
}

func (s failStep) String() string                   { return s.what }
func (s failStep) Run(context.Context, *boot) error { return s.err }

type liveRootStep struct{ plan live.Plan }

func (s liveRootStep) String() string {
	return fmt.Sprintf("mount the live root from %s on %s (image %v, %s)", s.plan.Medium, newRoot, s.plan.ImageCandidates(), upperString(s.plan))
}

func (s liveRootStep) Run(ctx context.Context, b *boot) error {
	b.logLiveWarnings(s.plan)
	if b.rootMounted() {
		b.log.Info("the root is already mounted; using it", "target", newRoot)
		return nil
	}
	return b.liveSetup().Live(ctx, s.plan, b.root, newRoot)
}

type overlayRootStep struct{ plan live.Plan }

func (s overlayRootStep) String() string {
	return fmt.Sprintf("make the root an overlay: lower %s, %s", live.LowerDir, upperString(s.plan))
}

func (s overlayRootStep) Run(ctx context.Context, b *boot) error {
	b.logLiveWarnings(s.plan)
	return b.liveSetup().Overlay(ctx, s.plan, b.root, newRoot)
}

func upperString(p live.Plan) string {
	u := "upper on tmpfs"
	if p.Upper.Persistent() {
		u = "upper on " + p.Upper.Device.String()
	} else if p.Upper.TmpfsOptions != "" {
		u += " (" + p.Upper.TmpfsOptions + ")"
	}
	if p.Ram {
		u += ", copied to RAM"
	}
	return u
}

func (b *boot) logLiveWarnings(p live.Plan) {
	for _, w := range p.Warnings {
		b.log.Warn("kernel command line: live/overlay option ignored", "problem", w)
	}
}

func (b *boot) liveSetup() *live.Setup {
	return &live.Setup{
		Sys: b.sys,
		Log: b.log,
		Load: func(ctx context.Context, names ...string) {
			if err := b.loader.Load(ctx, names...); err != nil {
				b.log.Debug("modules: not all loaded (they may be built in)", "modules", names, "err", err)
			}
		},
		Wait: b.waitDevice,
	}
}

// waitDevice waits for the persistent overlay's device with the root's
// timeout, activating LUKS and LVM like the root's wait.
func (b *boot) waitDevice(ctx context.Context, ref cmdline.DeviceRef) (*device.Device, error) {
	return b.waitOther(ctx, &ref, b.set.Timeout, b.rootActivation("rd.overlay="), "the overlay device", "rd.timeout=")
}

var (
	_ step = failStep{}
	_ step = liveRootStep{}
	_ step = overlayRootStep{}
)
