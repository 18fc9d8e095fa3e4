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
		lines, err := whyChains(set, kmod.Normalize(*why))
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
		fmt.Fprintf(w, "%s\t%d\t%s\n", m.Name, m.Size, strings.Join(m.Reasons, "; "))
	}
	for _, b := range set.Builtins {
		fmt.Fprintf(w, "%s\tbuiltin\t%s\n", b.Name, strings.Join(b.Reasons, "; "))
	}
	w.Flush()
	fmt.Fprintf(env.Stdout, "kernel %s: %d modules, %d bytes; %d builtin; %d firmware files named\n", version, len(set.Modules), total, len(set.Builtins), len(set.Firmware))
	if len(set.ForceLoad) > 0 {
		fmt.Fprintf(env.Stdout, "loaded at boot whatever the devices: %s\n", strings.Join(set.ForceLoad, " "))
	}
	return nil
}

// whyChains explains why module name is in set: its size and path, then
// each reason, with "dependency of X" and "softdep of X" reasons followed
// back (indented) to a module a rule or the host asked for.
func whyChains(set *modules.Set, name string) ([]string, error) {
	byName := map[string]*modules.Module{}
	for i := range set.Modules {
		byName[set.Modules[i].Name] = &set.Modules[i]
	}
	m := byName[name]
	if m == nil {
		for _, b := range set.Builtins {
			if b.Name == name {
				out := []string{fmt.Sprintf("%s is built into the kernel (not copied):", b.Name)}
				for _, r := range b.Reasons {
					out = append(out, "  "+r)
				}
				return out, nil
			}
		}
		return nil, fmt.Errorf("module %s is not in the set", name)
	}
	out := []string{fmt.Sprintf("%s (%s, %d bytes):", m.Name, m.Rel, m.Size)}
	var walk func(m *modules.Module, depth int, seen map[string]bool)
	walk = func(m *modules.Module, depth int, seen map[string]bool) {
		for _, r := range m.Reasons {
			out = append(out, strings.Repeat("  ", depth)+"← "+r)
			_, parent, ok := strings.Cut(r, " of ")
			if !ok || !(strings.HasPrefix(r, "dependency of ") || strings.HasPrefix(r, "softdep of ") || strings.HasPrefix(r, "weakdep of ")) {
				continue
			}
			if p := byName[parent]; p != nil && !seen[parent] {
				seen[parent] = true
				walk(p, depth+1, seen)
				delete(seen, parent)
			}
		}
	}
	walk(m, 1, map[string]bool{m.Name: true})
	return out, nil
}
