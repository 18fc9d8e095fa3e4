package cli

import (
	"context"
	"fmt"

	kernelinstall "github.com/pkginitrd/pkginitrd/kernel-install"
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

A hook never fails the package manager for want of a host description: when
host-only detection cannot work (no /proc/modules, a chroot, a container,
or detection fails) it builds a generic image and says why in one warning
line. It fails only when no image can be built, naming the cause.
`

func runKernelHook(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "kernel-hook", "[flags] postinst|postrm KVER [IMAGE]", kernelHookHelp)
	var h hookFlags
	h.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	r, err := kernelinstall.ParseHookRequest(fs.Args(), env.Getenv, h.root)
	if err != nil {
		fmt.Fprintf(env.Stderr, "pkginitrd kernel-hook: %v\n", err)
		return errUsage
	}
	p := kernelinstall.PlanHook(r)
	// Debian's hooks report what they do: the kernel's maintainer script
	// shows it (the wrapper sends stdout to stderr, away from debconf).
	fmt.Fprintf(env.Stdout, "pkginitrd: %s\n", p.Reason)
	return execute(ctx, env, h, p, true)
}
