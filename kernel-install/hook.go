package kernelinstall

import (
	"fmt"
	"path/filepath"
	"strings"
)

// HookRequest is a Debian kernel hook call: run-parts' arguments and the
// maintainer script's environment.
type HookRequest struct {
	Phase     string // postinst or postrm
	KVer      string
	Image     string // $2, optional
	Maint     string // DEB_MAINT_PARAMS
	MaintSet  bool
	InitrdOff bool // INITRD=No
	Root      string
}

// ParseHookRequest reads a hook's arguments (postinst|postrm KVER [IMAGE])
// and environment; root is --root ("" for /).
func ParseHookRequest(args []string, getenv func(string) string, root string) (HookRequest, error) {
	if len(args) < 2 || len(args) > 3 || (args[0] != "postinst" && args[0] != "postrm") || args[1] == "" || strings.Contains(args[1], "/") {
		return HookRequest{}, fmt.Errorf("want postinst|postrm KVER [IMAGE], got %q", args)
	}
	r := HookRequest{Phase: args[0], KVer: args[1], InitrdOff: strings.EqualFold(getenv("INITRD"), "no"), Root: normRoot(root)}
	if v := getenv("DEB_MAINT_PARAMS"); v != "" {
		r.Maint, r.MaintSet = v, true
	}
	if len(args) == 3 {
		r.Image = args[2]
	}
	return r, nil
}

// PlanHook decides what a Debian postinst.d or postrm.d hook does.
func PlanHook(r HookRequest) Plan {
	want := map[string]string{"postinst": "configure", "postrm": "remove"}[r.Phase]
	if r.InitrdOff {
		return Plan{Kind: Skip, Reason: "INITRD=No: not generating an initrd"}
	}
	if r.MaintSet {
		if verb := firstShellWord(r.Maint); verb != want {
			return Plan{Kind: Skip, Reason: fmt.Sprintf("DEB_MAINT_PARAMS=%q: nothing to do outside %s", r.Maint, want)}
		}
	}
	dir := inRoot(r.Root, "/boot")
	if r.Image != "" {
		dir = filepath.Dir(r.Image)
	}
	out := filepath.Join(dir, "initrd.img-"+r.KVer)
	if r.Phase == "postrm" {
		return Plan{Kind: Remove, Reason: "removing " + out, Output: out}
	}
	return Plan{Kind: Build, Reason: fmt.Sprintf("generating %s", out), Output: out,
		KVer: r.KVer, ModulesDir: modulesDir(r.Root, r.KVer), Root: r.Root}
}

// firstShellWord returns the first word of s as sh would split it
// (`eval set -- "$DEB_MAINT_PARAMS"; echo "$1"`): quotes removed.
func firstShellWord(s string) string {
	s = strings.TrimLeft(s, " \t\n")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			return b.String()
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				b.WriteString(s[i+1:])
				return b.String()
			}
			b.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
					i++
				}
				b.WriteByte(s[i])
			}
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
