package build

import (
	"fmt"
	"log/slog"

	"github.com/pkginitrd/pkginitrd/hostinfo"
	"github.com/pkginitrd/pkginitrd/modules"
)

// hostWants detects the host-only module set from procDir and sysDir (""
// = /proc and /sys; a recorded copy works too): the modules loaded now and
// what the root device chain needs (see hostinfo.Detect). A loaded module
// missing from the target kernel is a warning (the host may run another
// kernel); a module the root chain names is required; a device modalias
// that matches nothing is ignored.
func hostWants(procDir, sysDir string, log *slog.Logger) ([]modules.Want, error) {
	if procDir == "" {
		procDir = "/proc"
	}
	if sysDir == "" {
		sysDir = "/sys"
	}
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
