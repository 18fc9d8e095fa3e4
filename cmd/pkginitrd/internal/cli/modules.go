package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/pkginitrd/pkginitrd/internal/kmod"
	"github.com/pkginitrd/pkginitrd/modules"
	"github.com/pkginitrd/pkginitrd/pipeline"
)

func runModules(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "modules", "[flags]", `
Print the kernel modules pkginitrd build would put in the image, each with
its size and why it is in the set (loaded on the host, root device chain,
root filesystem, include rule, dependency or softdep of another module,
force-load), and the builtin modules the rules named. --why NAME prints the
chains that bring one module in, back to what asked for it. The selection
flags mean what they mean for build.`)
	var sel selection
	sel.register(fs)
	why := fs.String("why", "", "explain only why this module is in the set")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	opts, err := sel.options(env, fs)
	if err != nil {
		return err
	}
	opts.Logger = newLogger(env.Stderr, false, false)
	set, version, err := pipeline.Modules(ctx, opts)
	if err != nil {
		return err
	}
	if *why != "" {
		lines, err := whyLines(set, kmod.Normalize(*why))
		if err != nil {
			return fmt.Errorf("%w for kernel %s", err, version)
		}
		fmt.Fprintln(env.Stdout, strings.Join(lines, "\n"))
		return nil
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(w, "MODULE\tSIZE\tWHY\n")
	var total int64
	for _, m := range set.Modules {
		total += m.Size
		fmt.Fprintf(w, "%s\t%d\t%s\n", m.Name, m.Size, reasonList(m.Reasons))
	}
	for _, b := range set.Builtins {
		fmt.Fprintf(w, "%s\tbuiltin\t%s\n", b.Name, reasonList(b.Reasons))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "kernel %s: %d modules, %d bytes; %d builtin; %d firmware files named\n", version, len(set.Modules), total, len(set.Builtins), len(set.Firmware))
	if len(set.ForceLoad) > 0 {
		fmt.Fprintf(env.Stdout, "loaded at boot whatever the devices: %s\n", strings.Join(set.ForceLoad, " "))
	}
	return nil
}

// whyLines prints set.Why(name): a header with the module's path and size
// (or that it is builtin), then the chains as a tree, each reason indented
// below the one it explains.
func whyLines(set *modules.Set, name string) ([]string, error) {
	chains, err := set.Why(name)
	if err != nil {
		return nil, err
	}
	var out []string
	if m := set.Module(name); m != nil {
		out = append(out, fmt.Sprintf("%s (%s, %d bytes):", m.Name, m.Rel, m.Size))
	} else {
		out = append(out, fmt.Sprintf("%s is built into the kernel (not copied):", name))
	}
	var prev []modules.Reason
	for _, c := range chains {
		i := 0
		for i < len(prev) && i < len(c) && prev[i] == c[i] {
			i++ // printed with the previous chain
		}
		for ; i < len(c); i++ {
			out = append(out, strings.Repeat("  ", i+1)+"← "+c[i].String())
		}
		prev = c
	}
	return out, nil
}

func reasonList(rs []modules.Reason) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return strings.Join(s, "; ")
}
