package stage0

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/device"
)

// The kernel's hibernation interface: writing MAJ:MIN to resumeFile makes
// it look for an image on that device and, when there is one, restore it
// (the write then never returns); resumeOffsetFile is the page of a swap
// file's header on that device, written first.
const (
	resumeFile       = "/sys/power/resume"
	resumeOffsetFile = "/sys/power/resume_offset"
)

// resumeSettings says where to look for a hibernation image.
type resumeSettings struct {
	Device cmdline.DeviceRef // Kind None: do not resume
	Offset string            // resume_offset=, in pages; "" = 0
	From   string            // where Device comes from, for the log
	// Warnings are the resume options that were ignored.
	Warnings []string
}

// resumeFrom reads resume=, resume_offset=, noresume and hibernate=, with
// the image's resume device (a host-only image's) when the command line
// names none. noresume, hibernate=no or hibernate=noresume, and an empty
// resume= turn resuming off.
func resumeFrom(c *cmdline.CmdLine, conf *bootconf.Config) resumeSettings {
	var r resumeSettings
	if _, ok := c.Get("noresume"); ok {
		return r
	}
	if h, _ := c.Get("hibernate"); h == "no" || h == "noresume" {
		return r
	}
	dev, given := c.Get("resume")
	r.From = "resume="
	r.Offset, _ = c.Get("resume_offset")
	if !given {
		dev, r.From = conf.Resume.Device, "the image's resume device (the host's)"
		if _, ok := c.Get("resume_offset"); !ok {
			r.Offset = conf.Resume.Offset
		}
	}
	if dev == "" {
		return resumeSettings{}
	}
	ref, err := cmdline.ParseDeviceRef(dev)
	if err == nil && ref.Kind == cmdline.Live {
		err = errors.New("a live image is no resume device")
	}
	if err != nil {
		return resumeSettings{Warnings: []string{fmt.Sprintf("resume=%s (%s): %v; not resuming", dev, r.From, err)}}
	}
	if r.Offset != "" {
		if _, err := strconv.ParseUint(r.Offset, 10, 64); err != nil {
			return resumeSettings{Warnings: []string{fmt.Sprintf("resume_offset=%s: not a page number; not resuming", r.Offset)}}
		}
	}
	r.Device = ref
	return r
}

// resumeStep resumes from hibernation when the resume device holds an
// image. It comes before the root is waited for, checked or mounted, so
// that nothing the hibernated system had mounted is written to; the LUKS
// containers and LVM volumes the resume device is on are opened first. It
// runs once: after the emergency shell (where the user may have mounted
// filesystems) the retry does not resume. Nothing here fails the boot.
type resumeStep struct {
	r       resumeSettings
	timeout time.Duration
	tried   bool
}

func (s *resumeStep) String() string {
	if s.r.Device.Kind == cmdline.None {
		return "report the ignored resume options"
	}
	str := fmt.Sprintf("resume from hibernation if %s holds an image (%s", s.r.Device, s.r.From)
	if s.r.Offset != "" {
		str += ", resume_offset=" + s.r.Offset
	}
	return str + fmt.Sprintf("; wait up to %s for it)", s.timeout)
}

func (s *resumeStep) Run(ctx context.Context, b *boot) error {
	for _, w := range s.r.Warnings {
		b.log.Warn("kernel command line: resume option ignored", "problem", w)
	}
	if s.r.Device.Kind == cmdline.None {
		return nil
	}
	if s.tried {
		b.log.Info("not resuming from hibernation on a retry (filesystems may have been changed since)")
		return nil
	}
	s.tried = true
	b.resume(ctx, s.r, s.timeout)
	return nil
}

// resume waits for the resume device and hands it to the kernel.
func (b *boot) resume(ctx context.Context, r resumeSettings, timeout time.Duration) {
	if !b.sys.Exists(resumeFile) {
		b.log.Warn("this kernel cannot resume from hibernation (no "+resumeFile+"); booting normally", "resume", r.Device.String())
		return
	}
	if b.rootMounted() {
		b.log.Warn("a root is already mounted; not resuming from hibernation", "resume", r.Device.String())
		return
	}
	ref := r.Device
	d, _, err := b.scanFor(ctx, &ref, b.sys.After(timeout), b.rootActivation("resume="), func(devs []device.Device) {
		b.log.Info("resume device not there yet, waiting", "resume", r.Device.String(), "devices", len(devs))
	})
	// LVM activation ran for the resume device; the root wait runs it
	// again for the root, which may be in another volume group.
	b.lvmSeen = nil
	switch {
	case errors.Is(err, errDeadline):
		b.log.Warn("the resume device did not appear; booting without resuming (noresume on the kernel command line skips the wait)",
			"resume", r.Device.String(), "from", r.From, "waited", timeout)
		return
	case err != nil:
		b.log.Warn("cannot find the resume device; booting without resuming", "resume", r.Device.String(), "err", err)
		return
	}
	what := "no signature"
	if d.Info != nil {
		what = d.Info.Type
	}
	if r.Offset != "" {
		if err := b.sys.WriteFile(resumeOffsetFile, []byte(r.Offset)); err != nil {
			b.log.Warn("cannot set the resume offset; booting without resuming", "offset", r.Offset, "err", err)
			return
		}
	}
	b.log.Info("resuming from hibernation if the device holds an image", "device", d.String(), "content", what)
	// On success the kernel restores the hibernated system here and this
	// write never returns.
	if err := b.sys.WriteFile(resumeFile, fmt.Appendf(nil, "%d:%d", d.Major, d.Minor)); err != nil {
		b.log.Warn("the kernel did not resume; booting normally", "device", d.Node, "err", err)
		return
	}
	b.log.Info("no hibernation image to resume; booting normally", "device", d.Node)
}

var _ step = (*resumeStep)(nil)

// resumeTimeout bounds the wait for the resume device: the root's
// (rd.timeout=), or its default when the root wait is unbounded.
func resumeTimeout(root time.Duration) time.Duration {
	if root <= 0 {
		return cmdline.DefaultTimeout
	}
	return root
}
