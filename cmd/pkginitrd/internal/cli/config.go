package cli

import (
	"context"
	"fmt"

	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/resolver"
)

func runConfig(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "config", "[flags]", `
Print the configuration pkginitrd build would use, merged from the built-in
defaults, /etc/pkginitrd, ./pkginitrd.toml and ./pkginitrd.conf.d, with the
list of files read and the distribution detected from /etc/os-release (used
when none is configured) as comments.`)
	var configs stringList
	fs.Var(&configs, "config", "extra TOML configuration file, read last (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, read, err := confd.Load(confd.Sources{SystemDir: "/etc/pkginitrd", WorkDir: ".", Files: configs})
	if err != nil {
		return err
	}
	explicit := cfg.Distribution
	det, err := resolver.SelectDistribution(cfg, "/")
	if err != nil {
		return err
	}
	b, err := cfg.Marshal()
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, "# built-in defaults")
	for _, f := range read {
		fmt.Fprintf(env.Stdout, "# %s\n", f)
	}
	switch {
	case det == nil:
		fmt.Fprintf(env.Stdout, "# distribution %s is configured; none detected from os-release\n", explicit)
	case explicit != "":
		fmt.Fprintf(env.Stdout, "# distribution %s is configured (detected: %s, %s)\n", explicit, det.Distribution, det.Reason)
	default:
		fmt.Fprintf(env.Stdout, "# distribution %s release %s detected: %s\n", det.Distribution, det.Release, det.Reason)
	}
	_, err = env.Stdout.Write(b)
	return err
}
