package pipeline

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/blkid"
	"github.com/pkginitrd/pkginitrd/internal/fstab"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
)

// hostResume is the resume device a host-only image carries, so that
// hibernation works without resume= on the command line. In order:
//
//   - the kernel's own setting, sysDir/power/resume (MAJ:MIN, "0:0" when
//     unset) and power/resume_offset: a device-mapper device is named
//     /dev/mapper/NAME, another by the UUID its swap signature carries
//     (probe; "" on a recorded system, then /dev/NAME);
//   - Debian's etc/initramfs-tools/conf.d/resume saying RESUME=none turns
//     the rest off;
//   - the first swap device in etc/fstab (not noauto; swap files, which
//     need an offset, are skipped);
//   - RESUME= (and RESUME_OFFSET=) of that Debian file.
//
// etcRoot is the host's root directory; why says where the result came
// from, for the log.
func hostResume(sysDir, etcRoot string, probe func(dev string) string) (r bootconf.Resume, why string) {
	if dev := readTrim(filepath.Join(sysDir, "power", "resume")); dev != "" && dev != "0:0" {
		r.Device = nameDevice(sysDir, dev, probe)
		if off := readTrim(filepath.Join(sysDir, "power", "resume_offset")); off != "" && off != "0" {
			r.Offset = off
		}
		if r.Device != "" {
			return r, "the kernel's " + filepath.Join(sysDir, "power", "resume")
		}
	}
	debian := filepath.Join(etcRoot, "etc", "initramfs-tools", "conf.d", "resume")
	vars := shellVars(debian)
	if strings.EqualFold(vars["RESUME"], "none") {
		return bootconf.Resume{}, debian + " says RESUME=none"
	}
	fstabPath := filepath.Join(etcRoot, "etc", "fstab")
	if dev := fstabSwap(fstabPath); dev != "" {
		if strings.HasPrefix(dev, "/dev/") && !strings.HasPrefix(dev, "/dev/mapper/") && !strings.HasPrefix(dev, "/dev/disk/") {
			if uuid := probe(dev); uuid != "" {
				dev = "UUID=" + uuid
			}
		}
		return bootconf.Resume{Device: dev}, "the swap in " + fstabPath
	}
	if dev := vars["RESUME"]; dev != "" && !strings.EqualFold(dev, "auto") {
		return bootconf.Resume{Device: dev, Offset: vars["RESUME_OFFSET"]}, debian
	}
	return bootconf.Resume{}, ""
}

// nameDevice names the block device MAJ:MIN the way stage0 finds it again.
func nameDevice(sysDir, devno string, probe func(string) string) string {
	dir := filepath.Join(sysDir, "dev", "block", devno)
	if name := readTrim(filepath.Join(dir, "dm", "name")); name != "" {
		return "/dev/mapper/" + name
	}
	var devName string
	for _, l := range strings.Split(readTrim(filepath.Join(dir, "uevent")), "\n") {
		if v, ok := strings.CutPrefix(l, "DEVNAME="); ok {
			devName = "/dev/" + v
		}
	}
	if devName == "" {
		return ""
	}
	if uuid := probe(devName); uuid != "" {
		return "UUID=" + uuid
	}
	return devName
}

// fstabSwap returns the source of the first swap device in an fstab
// (not noauto; a swap file, which needs an offset, is not a device).
func fstabSwap(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	// A read error ends the table: the entries before it still count.
	entries, _, _ := fstab.Parse(f)
	for _, e := range entries {
		if e.Type != "swap" || e.Has("noauto") {
			continue
		}
		if strings.Contains(e.Spec, "=") || strings.HasPrefix(e.Spec, "/dev/") {
			return e.Spec
		}
	}
	return ""
}

// shellVars reads the NAME=value lines of a shell fragment (quotes removed).
func shellVars(path string) map[string]string {
	vars := map[string]string{}
	data, err := os.ReadFile(path)
	if err != nil {
		return vars
	}
	for _, l := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if !ok || strings.HasPrefix(k, "#") || strings.ContainsAny(k, " \t") {
			continue
		}
		vars[k] = strings.Trim(strings.TrimSpace(v), `"'`)
	}
	return vars
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// probeSwapUUID returns the UUID of the swap area (or hibernation image)
// on a live host's device node, or "".
func probeSwapUUID(dev string) string {
	f, err := os.Open(dev)
	if err != nil {
		return ""
	}
	defer f.Close()
	info, err := blkid.Probe(f)
	if err != nil || info == nil || (info.Type != "swap" && info.Type != "swsuspend") {
		return ""
	}
	return info.UUID
}

// hostResume is hostResume for this build: the device is probed only on
// a live host (a recorded system's /dev paths are not this machine's).
func (b *build) hostResume() bootconf.Resume {
	d, live := hostDirs(b.opts.ProcDir, b.opts.SysDir)
	probe := func(string) string { return "" }
	if live {
		probe = probeSwapUUID
	}
	root := b.opts.OSReleaseRoot
	if root == "" {
		root = "/"
	}
	r, why := hostResume(d.Sys, root, probe)
	if r.Device != "" {
		b.log.Info("host resume device (resume= and noresume override it)", "device", r.Device, "offset", r.Offset, "from", why)
	} else if why != "" {
		b.log.Info("no host resume device", "why", why)
	}
	return r
}
