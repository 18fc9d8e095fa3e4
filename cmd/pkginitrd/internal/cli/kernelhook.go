package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
)

const kernelHookHelp = `
The Debian kernel hooks (installed as /etc/kernel/postinst.d/pkginitrd and
/etc/kernel/postrm.d/pkginitrd, which run it with stdin from /dev/null and
stdout on stderr). The kernel's maintainer scripts run them as
  run-parts --arg=KVER --arg=IMAGE /etc/kernel/postinst.d
with DEB_MAINT_PARAMS holding the maintainer script's own arguments.

postinst builds /boot/initrd.img-KVER (in the directory of IMAGE when given)
for KVER from /usr/lib/modules/KVER with the system configuration
(/etc/pkginitrd); postrm removes it. Both do nothing when DEB_MAINT_PARAMS
is set and its first word is not configure (postinst) or remove (postrm),
and when INITRD=No, like initramfs-tools' hooks. SOURCE_DATE_EPOCH sets
every file's mtime. The flags are those of kernel-install (the installed
hooks pass none; edit them in /etc/kernel to add some).
`

// hookRequest is a Debian kernel hook call.
type hookRequest struct {
	phase     string // postinst or postrm
	kver      string
	image     string // $2, optional
	maint     string // DEB_MAINT_PARAMS
	maintSet  bool
	initrdOff bool // INITRD=No
	root      string
}

// planHook decides what a Debian postinst.d or postrm.d hook does.
func planHook(r hookRequest) plan {
	want := map[string]string{"postinst": "configure", "postrm": "remove"}[r.phase]
	if r.initrdOff {
		return plan{kind: planSkip, reason: "INITRD=No: not generating an initrd"}
	}
	if r.maintSet {
		if verb := firstShellWord(r.maint); verb != want {
			return plan{kind: planSkip, reason: fmt.Sprintf("DEB_MAINT_PARAMS=%q: nothing to do outside %s", r.maint, want)}
		}
	}
	dir := inRoot(r.root, "/boot")
	if r.image != "" {
		dir = filepath.Dir(r.image)
	}
	out := filepath.Join(dir, "initrd.img-"+r.kver)
	if r.phase == "postrm" {
		return plan{kind: planRemove, reason: "removing " + out, output: out}
	}
	return plan{kind: planBuild, reason: fmt.Sprintf("generating %s", out), output: out,
		modulesDir: modulesDir(r.root, r.kver), root: r.root}
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

func runKernelHook(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "kernel-hook", "[flags] postinst|postrm KVER [IMAGE]", kernelHookHelp)
	var h hookFlags
	h.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	a := fs.Args()
	if len(a) < 2 || len(a) > 3 || (a[0] != "postinst" && a[0] != "postrm") || a[1] == "" || strings.Contains(a[1], "/") {
		fmt.Fprintf(env.Stderr, "pkginitrd kernel-hook: want postinst|postrm KVER [IMAGE], got %q\n", a)
		return errUsage
	}
	maint, maintSet := "", false
	if v := env.Getenv("DEB_MAINT_PARAMS"); v != "" {
		maint, maintSet = v, true
	}
	r := hookRequest{phase: a[0], kver: a[1], maint: maint, maintSet: maintSet,
		initrdOff: strings.EqualFold(env.Getenv("INITRD"), "no"), root: normRoot(h.root)}
	if len(a) == 3 {
		r.image = a[2]
	}
	p := planHook(r)
	// Debian's hooks report what they do: the kernel's maintainer script
	// shows it (the wrapper sends stdout to stderr, away from debconf).
	fmt.Fprintf(env.Stdout, "pkginitrd: %s\n", p.reason)
	return execute(ctx, env, h, r.kver, p, true)
}
