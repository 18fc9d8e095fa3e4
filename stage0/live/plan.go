// Package live builds overlay roots: dracut's live images (root=live:…, a
// squashfs on an ISO or on a labelled partition, rd.live.*), persistent
// overlays (rd.live.overlay=, rd.overlay=), copy-to-RAM (rd.live.ram) and
// an overlay over an ordinary root (systemd.volatile=overlay, rd.overlay).
//
// Parse turns the command line into a Plan (pure); Setup carries it out
// through machine.Machine, whose functions are the only side effects.
//
// Layout (dracut's where it has one):
//
//	/run/initramfs/live          the live medium, read-only
//	/run/initramfs/squashed.img  the RAM copy of the image (rd.live.ram=1)
//	/run/rootfsbase              the lower layer: the image, or the plain root
//	/run/initramfs/overlay       tmpfs for a volatile upper: upper/ and work/
//	/run/initramfs/overlayfs     the persistent overlay device; its upper is
//	                             <path> (default /LiveOS/overlay-<label>-<uuid>)
//	                             and its work dir <path>/../ovlwork
package live

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
)

// Mode is what kind of overlay root the command line asks for.
type Mode int

// Modes.
const (
	Off     Mode = iota // an ordinary root
	Image               // root=live:…: a live image on a medium
	Overlay             // an ordinary root as the lower layer (systemd.volatile=overlay, rd.overlay)
)

func (m Mode) String() string {
	switch m {
	case Off:
		return "off"
	case Image:
		return "live image"
	case Overlay:
		return "overlay root"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Defaults of dracut's dmsquash-live.
const (
	DefaultDir       = "LiveOS"
	DefaultSquashImg = "squashfs.img"
)

// Plan is what the command line asks of the live/overlay root.
type Plan struct {
	Mode Mode
	// Medium is the device holding the image (Image mode).
	Medium cmdline.DeviceRef
	// Dir is rd.live.dir= relative to the medium's root ("" = top level);
	// DirGiven says it was on the command line. Without it the image is
	// looked for in LiveOS/ first, then at the top level.
	Dir       string
	DirGiven  bool
	SquashImg string // rd.live.squashimg=, relative to Dir
	Ram       bool   // rd.live.ram: copy the image to RAM, release the medium
	Upper     Upper
	// Warnings lists options that were ignored, for the log.
	Warnings []string
}

// Upper is where the overlay's writable layer lives.
type Upper struct {
	// Device holds a persistent upper; Kind None means a tmpfs.
	Device cmdline.DeviceRef
	// Path is the upper directory on Device ("" = the default
	// /<dir>/overlay-<label>-<uuid>, with the label and UUID of the medium
	// or of the plain root).
	Path string
	// TmpfsOptions are the tmpfs mount options of a volatile upper, e.g.
	// "size=64m" (rd.live.overlay.size=64); "" = the kernel's defaults.
	TmpfsOptions string
}

// Persistent reports whether the upper layer is on a device.
func (u Upper) Persistent() bool { return u.Device.Kind != cmdline.None }

// Parse reads the live/overlay options of c. The error reports a root=live:
// reference that cannot be used; the Plan's Mode is then still Image so
// the boot stops with that error rather than looking for another root.
func Parse(c *cmdline.CmdLine) (Plan, error) {
	p := Plan{Dir: DefaultDir, SquashImg: DefaultSquashImg}
	var err error
	switch {
	case c.Root.Kind == cmdline.Live:
		p.Mode = Image
		p.Medium, err = parseMedium(c.Root.Value)
	case c.Root.Kind == cmdline.None && c.Root.Raw != "" && liveImage(c):
		// root=CDLABEL=X rd.live.image: the plain parser refused CDLABEL=.
		p.Mode = Image
		p.Medium, err = parseMedium(c.Root.Raw)
	}
	if v, ok := c.Get("systemd.volatile"); ok && p.Mode == Off {
		switch v {
		case "overlay":
			p.Mode = Overlay
		case "no", "0", "false":
		default:
			p.warnf("systemd.volatile=%s is not supported (only overlay); ignored", v)
		}
	}
	for _, f := range c.Features {
		p.apply(f)
	}
	if p.Mode == Image {
		p.Medium.Raw = c.Root.Raw
		if !strings.HasPrefix(p.Medium.Raw, "live:") {
			p.Medium.Raw = "live:" + p.Medium.Raw
		}
	}
	return p, err
}

func liveImage(c *cmdline.CmdLine) bool {
	for i := len(c.Params) - 1; i >= 0; i-- {
		if k := c.Params[i].Key; k == "rd.live.image" || k == "liveimg" {
			b, ok := c.Params[i].Bool()
			return ok && b
		}
	}
	return false
}

// parseMedium reads the part after "live:": CDLABEL= is LABEL=, other
// device references as root= takes them. Files (live:/path.iso) and
// network sources are not supported.
func parseMedium(v string) (cmdline.DeviceRef, error) {
	if l, ok := cutPrefixFold(v, "CDLABEL="); ok {
		v = "LABEL=" + l
	}
	if strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "/dev/") {
		return cmdline.DeviceRef{Raw: v}, fmt.Errorf("root=live:%s: live images in files (dracut's liveiso) are not supported; name the device holding it (live:LABEL=…) and use rd.live.dir=/rd.live.squashimg=", v)
	}
	if strings.Contains(v, "://") || strings.HasPrefix(v, "nfs:") {
		return cmdline.DeviceRef{Raw: v}, fmt.Errorf("root=live:%s: network live images are not supported", v)
	}
	r, err := cmdline.ParseDeviceRef(v)
	if err != nil {
		return r, fmt.Errorf("root=live:%s: %w", v, err)
	}
	if r.Kind == cmdline.None {
		return r, fmt.Errorf("root=live: names no device")
	}
	return r, nil
}

func (p *Plan) apply(f cmdline.Param) {
	switch f.Key {
	case "rd.live.image", "rd.live.overlay.overlayfs", "rd.live.debug":
		// Implied: the root is always an overlay, the log has the details.
	case "rd.live.dir":
		p.Dir, p.DirGiven = cleanRel(f.Value), true
	case "rd.live.squashimg":
		if v := cleanRel(f.Value); v != "" {
			p.SquashImg = v
		} else {
			p.warnf("rd.live.squashimg=%s: empty file name; using %s", f.Value, p.SquashImg)
		}
	case "rd.live.ram":
		b, ok := f.Bool()
		if !ok {
			p.warnf("rd.live.ram=%s: not a boolean; ignored", f.Value)
		}
		p.Ram = ok && b
	case "rd.live.overlay.size":
		n, err := strconv.ParseUint(f.Value, 10, 32)
		if err != nil || n == 0 {
			p.warnf("rd.live.overlay.size=%s: want a size in MiB; using the tmpfs default", f.Value)
			break
		}
		p.Upper.TmpfsOptions = fmt.Sprintf("size=%dm", n)
	case "rd.live.overlay":
		if !f.HasValue || f.Value == "" {
			p.warnf("rd.live.overlay needs a device (rd.live.overlay=LABEL=…); ignored")
			break
		}
		p.persistent(f)
	case "rd.overlay":
		p.overlay(f)
	default:
		if strings.HasPrefix(f.Key, "rd.live") || strings.HasPrefix(f.Key, "rd.overlay") {
			p.warnf("%s is not supported; ignored", f.String())
		}
	}
}

// overlay handles dracut-ng's rd.overlay: bare or a boolean turns the
// overlay on (for a plain root; a live root has one anyway), "tmpfs[:opts]"
// asks for a tmpfs upper, "none" for none, anything else names a device.
func (p *Plan) overlay(f cmdline.Param) {
	v := f.Value
	b, isBool := f.Bool()
	switch {
	case isBool && !b, v == "none":
		if p.Mode == Overlay {
			p.Mode = Off
		}
		if p.Mode == Image {
			p.warnf("%s: a live root always has an overlay; using a tmpfs", f.String())
		}
		p.Upper.Device = cmdline.DeviceRef{}
		return
	case isBool:
	case v == "tmpfs" || strings.HasPrefix(v, "tmpfs:"):
		p.Upper.Device = cmdline.DeviceRef{}
		if opts := strings.TrimPrefix(strings.TrimPrefix(v, "tmpfs"), ":"); opts != "" {
			p.Upper.TmpfsOptions = opts
		}
	default:
		p.persistent(f)
	}
	if p.Mode == Off {
		p.Mode = Overlay
	}
}

// persistent parses <devspec>[:<path>|:auto].
func (p *Plan) persistent(f cmdline.Param) {
	spec, pth := f.Value, ""
	if i := strings.Index(spec, ":/"); i >= 0 {
		spec, pth = spec[:i], spec[i+1:]
	} else if s, ok := strings.CutSuffix(spec, ":auto"); ok {
		spec = s
	}
	r, err := cmdline.ParseDeviceRef(spec)
	if err != nil || r.Kind == cmdline.None || r.Kind == cmdline.Live {
		p.warnf("%s: cannot read the device %q; using a tmpfs upper", f.String(), spec)
		return
	}
	p.Upper.Device, p.Upper.Path = r, path.Clean(pth)
	if pth == "" {
		p.Upper.Path = ""
	}
}

// UpperPath returns the upper directory on a persistent overlay device
// with the given label and UUID (of the medium, or of the plain root).
func (p Plan) UpperPath(label, uuid string) string {
	if p.Upper.Path != "" {
		return p.Upper.Path
	}
	dir := p.Dir
	if dir == "" || p.Mode == Overlay && !p.DirGiven {
		dir = DefaultDir
	}
	name := "overlay-" + sanitize(label) + "-" + sanitize(uuid)
	return "/" + path.Join(dir, name)
}

// ImageCandidates returns the image paths relative to the medium's root,
// in the order they are tried: <dir>/<squashimg>, then (unless
// rd.live.dir= was given) <squashimg> at the top level.
func (p Plan) ImageCandidates() []string {
	first := path.Join(p.Dir, p.SquashImg)
	if p.DirGiven || p.Dir == "" {
		return []string{first}
	}
	return []string{first, p.SquashImg}
}

func (p *Plan) warnf(format string, args ...any) {
	p.Warnings = append(p.Warnings, fmt.Sprintf(format, args...))
}

// cleanRel makes a medium-relative path: "/LiveOS/" → "LiveOS", "/" → "".
func cleanRel(s string) string {
	s = strings.Trim(path.Clean("/"+s), "/")
	return s
}

func sanitize(s string) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(s)
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
