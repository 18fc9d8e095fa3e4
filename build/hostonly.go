package build

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/pkginitrd/pkginitrd/bootconf"
	"github.com/pkginitrd/pkginitrd/hostinfo"
	"github.com/pkginitrd/pkginitrd/modules"
	"github.com/pkginitrd/pkginitrd/stage0/blkid"
)

// hostWants detects the host-only module set from procDir and sysDir (""
// = /proc and /sys; a recorded copy works too): the modules loaded now and
// what the root device chain needs (see hostinfo.Detect). A loaded module
// missing from the target kernel is a warning (the host may run another
// kernel); a module the root chain names is required; a device modalias
// that matches nothing is ignored.
func hostWants(procDir, sysDir string, log *slog.Logger) ([]modules.Want, error) {
	procDir, sysDir, _ = hostDirs(procDir, sysDir)
	h, err := hostinfo.Detect(procDir, sysDir)
	if err != nil {
		return nil, fmt.Errorf("%w (build a generic image with --generic, or point --sysroot, --proc and --sys at a recorded system)", err)
	}
	log.Info("host-only detection", "proc", procDir, "sys", sysDir, "loaded", len(h.Loaded),
		"root", h.Root.Source, "fstype", h.Root.FSType, "root_chain", h.Modules(hostinfo.RootDriver, hostinfo.RootLayer, hostinfo.RootFS))
	wants := make([]modules.Want, 0, len(h.Needs))
	for _, n := range h.Needs {
		w := modules.Want{Name: n.Name, Reason: n.Reason}
		switch n.Kind {
		case hostinfo.Loaded:
			w.IfMissing = modules.MissingWarn
		case hostinfo.RootModalias:
			w.IfMissing = modules.MissingIgnore
		default:
			w.IfMissing = modules.MissingError
		}
		wants = append(wants, w)
	}
	return wants, nil
}

// hostRoot is the root a host-only image mounts when the kernel command line
// has no root=: the host's root filesystem as mounted now. On a live host
// (procDir and sysDir are the real ones) the device is probed and named by
// UUID=, which survives disk renumbering; from a recorded system it is the
// recorded mount source (probing a /dev path here would read this machine's
// disk). Roots with no block device (nfs, overlay, tmpfs) give no default.
func hostRoot(procDir, sysDir string) (bootconf.Root, error) {
	procDir, sysDir, live := hostDirs(procDir, sysDir)
	h, err := hostinfo.Detect(procDir, sysDir)
	if err != nil {
		return bootconf.Root{}, err
	}
	return rootFromMount(h.Root, live), nil
}

func rootFromMount(m hostinfo.Mount, probe bool) bootconf.Root {
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
// this machine's own (live) rather than a recorded system's.
func hostDirs(procDir, sysDir string) (proc, sys string, live bool) {
	if procDir == "" {
		procDir = "/proc"
	}
	if sysDir == "" {
		sysDir = "/sys"
	}
	return procDir, sysDir, procDir == "/proc" && sysDir == "/sys"
}
