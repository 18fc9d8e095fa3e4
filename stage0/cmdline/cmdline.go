// Package cmdline parses the kernel command line (/proc/cmdline) the way the
// kernel tokenises it and dracut/systemd interpret it: root=, rootfstype=,
// rootflags=, ro/rw, init= and its arguments, the rd.* switches, module
// blacklists, module load lists and <module>.<param>= options.
//
// Parsing is pure: Parse takes the text and returns a *CmdLine; values that
// cannot be understood are reported in CmdLine.Warnings, never fatal.
package cmdline

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/pkginitrd/pkginitrd/internal/kmod"
)

// DefaultTimeout is how long stage0 waits for the root device when the
// command line has no rd.timeout=.
const DefaultTimeout = 30 * time.Second

// Param is one token of the command line, quotes removed.
type Param struct {
	Key      string
	Value    string
	HasValue bool // "key=" (empty value) vs bare "key"
}

// String returns the token as it would be written on the command line.
func (p Param) String() string {
	if !p.HasValue {
		return p.Key
	}
	if strings.ContainsAny(p.Value, " \t") {
		return p.Key + `="` + p.Value + `"`
	}
	return p.Key + "=" + p.Value
}

// CmdLine is the parsed command line. Zero-value fields mean "not given";
// Parse fills the documented defaults.
type CmdLine struct {
	// Params holds every token before "--", in order (repeats included).
	Params []Param
	// AfterDashes holds the tokens after a bare "--", which the kernel hands
	// to init unparsed.
	AfterDashes []string

	Root       DeviceRef // root= (Kind None when absent)
	RootFSType string    // rootfstype=; "" or "auto" means probe
	RootFlags  string    // rootflags=
	RootMode   string    // "ro" or "rw", whichever came last; "" if neither
	Init       string    // init=
	InitArgs   []string  // arguments for the real init (see initArgs)

	// systemd's mount.usr=, mount.usrfstype= and mount.usrflags=: a /usr
	// for the initramfs to mount instead of the root fstab's. Usr is Kind
	// None when absent, empty or "fstab" (UsrFstab is then true: the last
	// mount.usr= asks for the fstab's /usr). UsrFlags accumulates, comma
	// separated, as systemd-fstab-generator does.
	Usr       DeviceRef
	UsrFstab  bool
	UsrFSType string // "" or "auto" means probe (or rootfstype=)
	UsrFlags  string

	Break     []string      // rd.break hooks; bare rd.break is "pre-pivot"
	Shell     bool          // rd.shell (default true)
	Emergency string        // rd.emergency=reboot|poweroff|halt
	Timeout   time.Duration // rd.timeout= in seconds (default 30 s; 0 = forever)
	Quiet     bool          // quiet
	Debug     bool          // rd.debug

	// Blacklist lists modules not to load (module_blacklist=,
	// rd.driver.blacklist=, modprobe.blacklist=), names normalised.
	Blacklist []string
	// ModulesLoad lists modules to load early (rd.modules-load=,
	// rd.modules_load=, modules_load=, modules-load=, rd.driver.pre=).
	ModulesLoad []string
	// ModuleParams maps a normalised module name to its "param=value"
	// options, from <module>.<param>=value tokens, in command-line order.
	ModuleParams map[string][]string

	FsckMode   string // fsck.mode=auto|force|skip ("" = auto)
	FsckRepair string // fsck.repair=preen|yes|no ("" = preen)

	// Features holds the rd.luks*, rd.lvm*, rd.live*, rd.overlay* tokens, in
	// order, for the stage0 features that interpret them.
	Features []Param

	// Warnings lists values that could not be understood and were ignored.
	Warnings []string
}

// Read parses the command line from r (normally /proc/cmdline).
func Read(r io.Reader) (*CmdLine, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read kernel command line: %w", err)
	}
	return Parse(string(b)), nil
}

// Parse parses a kernel command line. The last occurrence of a key wins,
// except for lists (blacklists, load lists, module options, rd.break, the
// feature keys), which accumulate.
func Parse(s string) *CmdLine {
	c := &CmdLine{Shell: true, Timeout: DefaultTimeout, ModuleParams: map[string][]string{}}
	toks := tokenize(s)
	initAt := -1
	for i, tok := range toks {
		if tok == "--" {
			c.AfterDashes = append(c.AfterDashes, toks[i+1:]...)
			break
		}
		p := parseParam(tok)
		c.Params = append(c.Params, p)
		if p.Key == "init" {
			initAt = len(c.Params) - 1
		}
		c.apply(p)
	}
	if c.Root.Kind != None && c.Root.Kind != Live && c.boolLast("rd.live.image", "liveimg") {
		// dracut: rd.live.image with a plain root= means root=live:<root>.
		c.Root = DeviceRef{Kind: Live, Value: c.Root.Raw, Raw: "live:" + c.Root.Raw}
	}
	c.InitArgs = c.initArgs(initAt)
	return c
}

// Get returns the value of the last occurrence of key, and whether it occurs.
func (c *CmdLine) Get(key string) (string, bool) {
	for i := len(c.Params) - 1; i >= 0; i-- {
		if c.Params[i].Key == key {
			return c.Params[i].Value, true
		}
	}
	return "", false
}

// All returns the values of every occurrence of key, in order.
func (c *CmdLine) All(key string) []string {
	var vs []string
	for _, p := range c.Params {
		if p.Key == key {
			vs = append(vs, p.Value)
		}
	}
	return vs
}

// HasBreak reports whether rd.break asked for a shell at hook.
func (c *CmdLine) HasBreak(hook string) bool {
	for _, b := range c.Break {
		if b == hook {
			return true
		}
	}
	return false
}

// Blacklisted reports whether module (any spelling) is blacklisted.
func (c *CmdLine) Blacklisted(module string) bool {
	n := kmod.Normalize(module)
	for _, b := range c.Blacklist {
		if b == n {
			return true
		}
	}
	return false
}

// ModuleOptions returns the finit_module parameter string for module, e.g.
// `debug=1 name="a b"`, built from its <module>.<param>= tokens.
func (c *CmdLine) ModuleOptions(module string) string {
	return strings.Join(c.ModuleParams[kmod.Normalize(module)], " ")
}

func (c *CmdLine) apply(p Param) {
	switch p.Key {
	case "root":
		ref, err := ParseDeviceRef(p.Value)
		if err != nil {
			c.warnf("root=%s: %v", p.Value, err)
		}
		c.Root = ref
	case "rootfstype":
		c.RootFSType = p.Value
	case "rootflags":
		c.RootFlags = p.Value
	case "ro", "rw":
		c.RootMode = p.Key
	case "init":
		c.Init = p.Value
	case "mount.usr", "mount.usrfstype", "mount.usrflags":
		c.applyUsr(p)
	case "rd.break":
		if !p.HasValue {
			c.Break = append(c.Break, "pre-pivot")
		} else if b, ok := p.Bool(); ok {
			if b {
				c.Break = append(c.Break, "pre-pivot")
			}
		} else {
			c.Break = append(c.Break, splitList(p.Value)...)
		}
	case "rd.shell":
		c.Shell = c.boolParam(p, true)
	case "rd.emergency":
		switch p.Value {
		case "reboot", "poweroff", "halt":
			c.Emergency = p.Value
		default:
			c.warnf("rd.emergency=%s: want reboot, poweroff or halt", p.Value)
		}
	case "rd.timeout":
		n, err := strconv.ParseUint(strings.TrimSuffix(p.Value, "s"), 10, 32)
		if err != nil {
			c.warnf("rd.timeout=%s: not a number of seconds", p.Value)
			break
		}
		c.Timeout = time.Duration(n) * time.Second
	case "quiet":
		c.Quiet = c.boolParam(p, true)
	case "rd.debug":
		c.Debug = c.boolParam(p, true)
	case "module_blacklist", "rd.driver.blacklist", "modprobe.blacklist":
		for _, m := range splitList(p.Value) {
			c.Blacklist = append(c.Blacklist, kmod.Normalize(m))
		}
	case "rd.modules-load", "rd.modules_load", "modules_load", "modules-load", "rd.driver.pre":
		for _, m := range splitList(p.Value) {
			c.ModulesLoad = append(c.ModulesLoad, kmod.Normalize(m))
		}
	case "fsck.mode":
		switch p.Value {
		case "auto", "force", "skip":
			c.FsckMode = p.Value
		default:
			c.warnf("fsck.mode=%s: want auto, force or skip", p.Value)
		}
	case "fsck.repair":
		switch p.Value {
		case "preen", "yes", "no":
			c.FsckRepair = p.Value
		default:
			c.warnf("fsck.repair=%s: want preen, yes or no", p.Value)
		}
	default:
		switch {
		case isFeatureKey(p.Key):
			c.Features = append(c.Features, p)
		case strings.HasPrefix(p.Key, "rd."):
			// Other rd.* keys belong to the initrd, never to a module.
		case strings.Contains(p.Key, "."):
			mod, param, _ := strings.Cut(p.Key, ".")
			if mod == "" || param == "" {
				break
			}
			opt := param
			if p.HasValue {
				opt = param + "=" + quoteValue(p.Value)
			}
			mod = kmod.Normalize(mod)
			c.ModuleParams[mod] = append(c.ModuleParams[mod], opt)
		}
	}
}

// applyUsr reads systemd's /usr options. An empty value unsets the
// option, as in systemd-fstab-generator.
func (c *CmdLine) applyUsr(p Param) {
	switch p.Key {
	case "mount.usr":
		c.Usr, c.UsrFstab = DeviceRef{}, false
		switch p.Value {
		case "":
		case "fstab":
			c.UsrFstab = true
		case "gpt-auto", "/dev/nfs":
			c.warnf("mount.usr=%s: not supported by pkginitrd; using the root's fstab for /usr", p.Value)
		default:
			ref, err := ParseDeviceRef(p.Value)
			if err == nil && (ref.Kind == Live || ref.Kind == Path && !strings.HasPrefix(ref.Value, "/dev/")) {
				err = fmt.Errorf("not a block device")
			}
			if err != nil {
				c.warnf("mount.usr=%s: %v; using the root's fstab for /usr", p.Value, err)
				return
			}
			c.Usr = ref
		}
	case "mount.usrfstype":
		c.UsrFSType = p.Value
	case "mount.usrflags":
		switch {
		case p.Value == "":
		case c.UsrFlags == "":
			c.UsrFlags = p.Value
		default:
			c.UsrFlags += "," + p.Value
		}
	}
}

func isFeatureKey(k string) bool {
	for _, prefix := range []string{"rd.luks", "rd.lvm", "rd.live", "rd.overlay"} {
		if k == prefix || strings.HasPrefix(k, prefix+".") {
			return true
		}
	}
	return false
}

// quoteValue quotes a module parameter value containing blanks so that the
// kernel's parse_args sees one value.
func quoteValue(v string) string {
	if strings.ContainsAny(v, " \t") {
		return `"` + v + `"`
	}
	return v
}

// initArgs follows dracut's init.sh: with init=, the real init gets every
// token after init= except console= and BOOT_IMAGE=; without it, only the
// runlevel-like words the kernel would have passed to init.
func (c *CmdLine) initArgs(initAt int) []string {
	var args []string
	if initAt >= 0 {
		for _, p := range c.Params[initAt+1:] {
			if p.Key == "console" || p.Key == "BOOT_IMAGE" {
				continue
			}
			args = append(args, p.String())
		}
		return append(args, c.AfterDashes...)
	}
	all := make([]string, 0, len(c.Params)+len(c.AfterDashes))
	for _, p := range c.Params {
		if !p.HasValue {
			all = append(all, p.Key)
		}
	}
	for _, a := range append(all, c.AfterDashes...) {
		switch a {
		case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "s", "S", "single", "emergency", "auto":
			args = append(args, a)
		}
	}
	return args
}

func (c *CmdLine) boolParam(p Param, def bool) bool {
	b, ok := p.Bool()
	if !ok {
		c.warnf("%s=%s: not a boolean, using %v", p.Key, p.Value, def)
		return def
	}
	return b
}

// boolLast reports the last value of any of keys as a boolean.
func (c *CmdLine) boolLast(keys ...string) bool {
	for i := len(c.Params) - 1; i >= 0; i-- {
		for _, k := range keys {
			if c.Params[i].Key == k {
				b, _ := c.Params[i].Bool()
				return b
			}
		}
	}
	return false
}

func (c *CmdLine) warnf(format string, args ...any) {
	c.Warnings = append(c.Warnings, fmt.Sprintf(format, args...))
}

// Bool reads a dracut-style boolean: a bare key and 1/yes/y/true/on are
// true, 0/no/n/false/off false; ok is false for anything else.
func (p Param) Bool() (value, ok bool) {
	if !p.HasValue {
		return true, true
	}
	switch strings.ToLower(p.Value) {
	case "1", "yes", "y", "true", "on":
		return true, true
	case "0", "no", "n", "false", "off":
		return false, true
	}
	return false, false
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// tokenize splits like the kernel's next_arg: blanks separate tokens except
// inside double quotes, which may start anywhere in a token.
func tokenize(s string) []string {
	var toks []string
	i := 0
	for i < len(s) {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			break
		}
		start, inQuote := i, false
		for i < len(s) && (inQuote || !isSpace(s[i])) {
			if s[i] == '"' {
				inQuote = !inQuote
			}
			i++
		}
		toks = append(toks, s[start:i])
	}
	return toks
}

// parseParam splits a token at its first '=' and removes the quotes the
// kernel removes: a leading quote of the token or of the value, and the
// closing quote at the end of the token.
func parseParam(tok string) Param {
	quoted := strings.HasPrefix(tok, `"`)
	if quoted {
		tok = tok[1:]
	}
	key, val, has := strings.Cut(tok, "=")
	if has && strings.HasPrefix(val, `"`) {
		val = val[1:]
		quoted = true
	}
	if quoted {
		if has {
			val = strings.TrimSuffix(val, `"`)
		} else {
			key = strings.TrimSuffix(key, `"`)
		}
	}
	return Param{Key: key, Value: val, HasValue: has}
}

func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\v' || b == '\f'
}
