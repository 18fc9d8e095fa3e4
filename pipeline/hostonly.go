package pipeline

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/blkid"
	"github.com/pkginitrd/pkginitrd/internal/mountinfo"
	"github.com/pkginitrd/pkginitrd/modules"
	"github.com/pkginitrd/pkginitrd/modules/hostinfo"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
)

// detectHost runs the host-only detection of a build, once: hostinfo.Detect
// on procDir and sysDir ("" = /proc and /sys; a recorded copy
// works too), and on a live host /dev, whose LUKS headers it reads (up to
// luks.HeaderMax each). The helpers below take its result.
func detectHost(procDir, sysDir string, log *slog.Logger) (*hostinfo.Host, error) {
	d, _ := hostDirs(procDir, sysDir)
	h, err := hostinfo.Detect(d)
	if err != nil {
		return nil, &HostError{fmt.Errorf("%w (build a generic image with --generic, or point --sysroot, --proc and --sys at a recorded system)", err)}
	}
	log.Info("host-only detection", "proc", d.Proc, "sys", d.Sys, "dev", d.Dev, "loaded", len(h.Loaded),
		"root", h.Root.Source, "fstype", h.Root.FSType, "layers", h.Layers,
		"root_chain", h.Modules(hostinfo.RootDriver, hostinfo.RootLayer, hostinfo.RootFS, hostinfo.RootCrypto, hostinfo.RootTarget))
	return h, nil
}

// HostError is a failed host-only detection: this machine's /proc and /sys
// do not describe it. A generic build of the same image needs neither.
type HostError struct{ Err error }

func (e *HostError) Error() string { return e.Err.Error() }
func (e *HostError) Unwrap() error { return e.Err }

// hostWants is the host-only module set: the modules loaded now and what
// the root device chain needs (see hostinfo.RootChain). A loaded module
// missing from the target kernel is a warning (the host may run another
// kernel); a module the root chain names is required, except the crypto
// algorithms and device-mapper targets, which are warnings (they may be
// built in under another name) and which stage0 force-loads (the kernel
// would request them through a modprobe the image does not have); a device
// modalias that matches nothing is ignored.
func hostWants(h *hostinfo.Host) []modules.Want {
	wants := make([]modules.Want, 0, len(h.Needs))
	for _, n := range h.Needs {
		w := modules.Want{Name: n.Name, Reason: modules.Reason{Kind: modules.RootDevice, Rule: n.Reason}}
		switch n.Kind {
		case hostinfo.Loaded:
			w.Reason.Kind, w.IfMissing = modules.HostLoaded, modules.MissingWarn
		case hostinfo.RootModalias:
			w.IfMissing = modules.MissingIgnore
		case hostinfo.RootCrypto, hostinfo.RootTarget:
			w.IfMissing, w.ForceLoad = modules.MissingWarn, true
		default:
			w.IfMissing = modules.MissingError
		}
		wants = append(wants, w)
	}
	return wants
}

// hostRoot is the root a host-only image mounts when the kernel command line
// has no root=: the host's root filesystem as mounted now (h.Root, detected
// from procDir and sysDir). On a live host (procDir and sysDir are the real
// ones) the device is probed and named by UUID=, which survives disk
// renumbering; from a recorded system it is the recorded mount source
// (probing a /dev path here would read this machine's disk), a /dev/dm-N
// source named /dev/mapper/NAME after its dm/name (read from sysDir).
// Roots with no block device (nfs, overlay, tmpfs) give no default.
func hostRoot(h *hostinfo.Host, procDir, sysDir string) bootconf.Root {
	d, live := hostDirs(procDir, sysDir)
	m := h.Root
	if name := hostinfo.DMName(d.Sys, m.Source); name != "" {
		// /dev/dm-N numbers follow activation order; the mapping's
		// name (an LV's vg-lv) is what stage0 finds again.
		m.Source = "/dev/mapper/" + name
	}
	return rootFromMount(m, live)
}

func rootFromMount(m mountinfo.Mount, probe bool) bootconf.Root {
	if !strings.HasPrefix(m.Source, "/dev/") {
		return bootconf.Root{}
	}
	r := bootconf.Root{Device: m.Source, FSType: m.FSType}
	if m.FSType == "btrfs" && m.Root != "" && m.Root != "/" {
		r.Flags = "subvol=" + m.Root
	}
	if probe {
		if f, err := os.Open(m.Source); err == nil {
			info, err := blkid.Probe(f)
			f.Close()
			if err == nil && info.UUID != "" {
				r.Device = "UUID=" + info.UUID
			}
		}
	}
	return r
}

// hostDirs fills in the defaults /proc and /sys and tells whether they are
// this machine's own (live) rather than a recorded system's; a live host's
// devices (/dev) are read for LUKS headers.
func hostDirs(procDir, sysDir string) (d hostinfo.Dirs, live bool) {
	if procDir == "" {
		procDir = "/proc"
	}
	if sysDir == "" {
		sysDir = "/sys"
	}
	d = hostinfo.Dirs{Proc: procDir, Sys: sysDir}
	if live = procDir == "/proc" && sysDir == "/sys"; live {
		d.Dev = "/dev"
	}
	return d, live
}
