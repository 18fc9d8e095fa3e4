package modules

import (
	"fmt"
	"slices"
	"strings"
)

// ReasonKind says what brought a module into a Set.
type ReasonKind uint8

const (
	Included    ReasonKind = iota // an Include rule matched it; Rule is the rule as written
	ForceLoaded                   // a ForceLoad entry names it; Rule is the entry as written
	HostLoaded                    // a Want: loaded on the host; Rule is the detector's description
	RootDevice                    // a Want: the host's root device chain needs it; Rule is the detector's description
	Dependency                    // a hard dependency of Parent
	SoftdepPre                    // a softdep pre: of Parent
	SoftdepPost                   // a softdep post: of Parent
	Weakdep                       // a weakdep of Parent
)

// kindNames are the kinds' names, indexed by kind.
func kindNames() []string {
	return []string{
		Included:    "include",
		ForceLoaded: "force-load",
		HostLoaded:  "host-loaded",
		RootDevice:  "root-device",
		Dependency:  "dependency",
		SoftdepPre:  "softdep-pre",
		SoftdepPost: "softdep-post",
		Weakdep:     "weakdep",
	}
}

func (k ReasonKind) String() string {
	if names := kindNames(); int(k) < len(names) {
		return names[k]
	}
	return fmt.Sprintf("ReasonKind(%d)", k)
}

// MarshalText writes the kind's name ("include", "dependency", …), as in a manifest.
func (k ReasonKind) MarshalText() ([]byte, error) {
	names := kindNames()
	if int(k) >= len(names) {
		return nil, fmt.Errorf("modules: unknown reason kind %d", k)
	}
	return []byte(names[k]), nil
}

// UnmarshalText reads a name MarshalText wrote.
func (k *ReasonKind) UnmarshalText(b []byte) error {
	i := slices.Index(kindNames(), string(b))
	if i < 0 {
		return fmt.Errorf("modules: unknown reason kind %q", b)
	}
	*k = ReasonKind(i)
	return nil
}

// Reason is one reason a module or builtin is in a Set.
type Reason struct {
	Kind   ReasonKind `json:"kind"`
	Parent string     `json:"parent,omitempty"` // the module depending on it (Dependency, Softdep*, Weakdep)
	Rule   string     `json:"rule,omitempty"`   // the rule, entry or description that selected it (the other kinds)
}

// String is the reason as `pkginitrd modules` prints it: "include rule
// virtio.*", "force-load", "dependency of virtio_blk", "softdep of ext4",
// "weakdep of i915", or a detector's own description.
func (r Reason) String() string {
	switch r.Kind {
	case Included:
		return "include rule " + r.Rule
	case ForceLoaded:
		return "force-load"
	case Dependency:
		return "dependency of " + r.Parent
	case SoftdepPre, SoftdepPost:
		return "softdep of " + r.Parent
	case Weakdep:
		return "weakdep of " + r.Parent
	}
	return r.Rule
}

// Module returns the loadable module name of the set, or nil.
func (s *Set) Module(name string) *Module {
	i, ok := slices.BinarySearchFunc(s.Modules, name, func(m Module, n string) int { return strings.Compare(m.Name, n) })
	if !ok {
		return nil
	}
	return &s.Modules[i]
}

// Builtin returns the builtin name of the set, or nil.
func (s *Set) Builtin(name string) *Builtin {
	i, ok := slices.BinarySearchFunc(s.Builtins, name, func(b Builtin, n string) int { return strings.Compare(b.Name, n) })
	if !ok {
		return nil
	}
	return &s.Builtins[i]
}

// Why explains why name, a module or builtin of the set, is in it: one
// chain per path back to what asked for it. A chain starts with a reason
// of name; while a reason has a Parent in the set, the next element is a
// reason of that parent. A chain ends at a reason with no Parent (a rule,
// a Want, a force-load), or at a parent already on the chain. Chains come
// depth first, in the order of the reasons, so consecutive chains share
// their common prefix.
func (s *Set) Why(name string) ([][]Reason, error) {
	var reasons []Reason
	switch m, b := s.Module(name), s.Builtin(name); {
	case m != nil:
		reasons = m.Reasons
	case b != nil:
		reasons = b.Reasons
	default:
		return nil, fmt.Errorf("module %s is not in the set", name)
	}
	var out [][]Reason
	seen := map[string]bool{name: true}
	var walk func(chain, reasons []Reason)
	walk = func(chain, reasons []Reason) {
		for _, r := range reasons {
			c := append(slices.Clip(chain), r)
			p := s.Module(r.Parent)
			if p == nil || seen[p.Name] || len(p.Reasons) == 0 {
				out = append(out, c)
				continue
			}
			seen[p.Name] = true
			walk(c, p.Reasons)
			delete(seen, p.Name)
		}
	}
	walk(nil, reasons)
	return out, nil
}
