package cli

import (
	"context"
	"fmt"

	confd "github.com/pkginitrd/pkginitrd/conf.d"
)

func runConfig(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "config", "[flags]", `
Print the configuration pkginitrd build would use, merged from the built-in
defaults, /etc/pkginitrd, ./pkginitrd.toml and ./pkginitrd.conf.d, with the
list of files read as a comment.`)
	var configs stringList
	fs.Var(&configs, "config", "extra TOML configuration file, read last (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, read, err := confd.Load(confd.Sources{SystemDir: "/etc/pkginitrd", WorkDir: ".", Files: configs})
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
	_, err = env.Stdout.Write(b)
	return err
}
