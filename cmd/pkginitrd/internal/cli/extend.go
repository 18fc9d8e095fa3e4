package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"

	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/internal/compress"
	kernelinstall "github.com/pkginitrd/pkginitrd/kernel-install"
	"github.com/pkginitrd/pkginitrd/pipeline"
	"github.com/pkginitrd/pkginitrd/pipeline/extend"
)

const extendHelp = `
Append a small cpio segment with this host's additions to a prebuilt image
(e.g. a distribution's generic initrd), without rebuilding it: the output is
the base image's bytes, unchanged, followed by the addition, so the base
stays verifiable by its hash (printed). The kernel unpacks the segments in
order; a later file replaces an earlier one of the same name.

--module adds a module with the dependencies the base lacks, taken from
--modules-dir (default /usr/lib/modules/KVER, KVER being the base's kernel),
as the host stores them, with the union of the base's module index and
theirs; stage0 loads it at boot. --cmdline words apply as if they came first
on the kernel command line (the real command line wins); with --module they
need a pkginitrd base image. Extending an extended image merges the
additions. SOURCE_DATE_EPOCH sets every added file's mtime (default 0): the
same inputs give the same bytes.

Example:
  pkginitrd extend --base /usr/lib/modules/KVER/initrd -o /boot/initrd.img \
    --include /etc/keys/root.key:/etc/keys/root.key --crypttab \
    --cmdline rd.luks.key=/etc/keys/root.key --module nbd
`

func runExtend(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "extend", "--base IMAGE -o OUTPUT [flags]", extendHelp)
	var (
		base     = fs.String("base", "", "the prebuilt image (not modified)")
		output   = fs.String("output", "", "path of the extended image to write (may be the base)")
		modDir   = fs.String("modules-dir", "", "module tree of the base's kernel (default /usr/lib/modules/KVER)")
		crypttab = fs.Bool("crypttab", false, "add this host's /etc/crypttab")
		comp     = fs.String("compression", "", "zstd, gzip, xz or none (default: as the base's last segment)")
		mode     = fs.String("mode", "", "file mode of the output, octal (default 0600)")
		verbose  = fs.Bool("verbose", false, "log every step")
		includes stringList
		mods     stringList
		words    stringList
	)
	fs.StringVar(output, "o", "", "shorthand for --output")
	fs.Var(&includes, "include", "SRC:DEST: copy a host file or directory into the addition (repeatable)")
	fs.Var(&mods, "module", "kernel module to add and load at boot, with its dependencies (repeatable)")
	fs.Var(&words, "cmdline", "kernel command-line words stage0 applies before the real command line (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *base == "" || *output == "" || fs.NArg() > 0 {
		fmt.Fprintln(env.Stderr, "pkginitrd extend: want --base IMAGE -o OUTPUT and no arguments (see --help)")
		return errUsage
	}
	x := confd.Extend{Include: includes, Modules: mods, Crypttab: *crypttab, Cmdline: words}
	opts, err := extendOptions(env, x, *base, *output)
	if err != nil {
		return err
	}
	opts.ModulesDir, opts.Compression = *modDir, compress.Format(*comp)
	if *mode != "" {
		m, err := strconv.ParseUint(*mode, 8, 32)
		if err != nil || m > 0o777 {
			return fmt.Errorf("--mode %q: want octal permission bits such as 0600", *mode)
		}
		opts.Mode = os.FileMode(m)
	}
	opts.Logger = newLogger(env.Stderr, *verbose, false)
	return runExtension(ctx, env.Stdout, opts)
}

// extendOptions turns the additions into extend.Options.
func extendOptions(env Env, x confd.Extend, base, output string) (extend.Options, error) {
	opts := extend.Options{Base: base, Output: output, Modules: x.Modules, Cmdline: x.Cmdline}
	for _, s := range x.Include {
		inc, err := pipeline.ParseInclude(s)
		if err != nil {
			return opts, err
		}
		opts.Includes = append(opts.Includes, extend.Include{Src: inc.Src, Dest: inc.Dest})
	}
	if x.Crypttab {
		opts.Crypttab = "/etc/crypttab"
	}
	var err error
	opts.Mtime, err = sourceDateEpoch(env.Getenv)
	return opts, err
}

// runExtension runs extend and reports what it wrote on w.
func runExtension(ctx context.Context, w io.Writer, opts extend.Options) error {
	res, err := extend.Run(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: %d bytes: base %s (%d bytes, sha256 %s, unchanged) + %d entries",
		opts.Output, res.Size, opts.Base, res.BaseSize, res.BaseSHA256, res.Entries)
	if len(res.Modules) > 0 {
		fmt.Fprintf(w, ", modules added: %v", res.Modules)
	}
	fmt.Fprintln(w)
	return nil
}

// extendPrebuilt carries out a kernel-install Extend plan: the prebuilt
// initrd plus the configuration's [extend] addition, for the plan's kernel.
func extendPrebuilt(ctx context.Context, env Env, p kernelinstall.Plan, x confd.Extend, log *slog.Logger, verbose bool) error {
	opts, err := extendOptions(env, x, p.Src, p.Output)
	if err != nil {
		return err
	}
	opts.ModulesDir, opts.Logger = p.ModulesDir, log
	if p.Root != "" && x.Crypttab {
		opts.Crypttab = p.Root + "/etc/crypttab"
	}
	out := io.Discard
	if verbose {
		out = env.Stdout
	}
	return runExtension(ctx, out, opts)
}
