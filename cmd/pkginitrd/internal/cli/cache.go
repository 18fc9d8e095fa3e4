package cli

import (
	"context"
	"fmt"

	"github.com/pkginitrd/pkginitrd/backends/cache"
)

const cacheHelp = `
Manage pkginitrd's cache: package lists, downloaded archives, unpacked
package trees and module metadata, in /var/cache/pkginitrd for root,
otherwise $XDG_CACHE_HOME/pkginitrd or ~/.cache/pkginitrd (--cache-dir
elsewhere). The directory must belong to the user running pkginitrd and be
writable by nobody else; pkginitrd keeps it at mode 0700.

Subcommands:
  clean   remove cached data (see 'pkginitrd cache clean --help')`

const cleanHelp = `
Remove cached data. Without --older-than everything in the cache directory
goes: package lists, downloaded archives, unpacked package trees and module
metadata; the next build downloads and unpacks what it needs again. With
--older-than only the unpacked package trees that no build used for that
long are removed.

A running build holds the cache's lock; clean waits for it to finish.
Builds also clean on their own: when a build ends and no other build runs,
the least recently used package trees beyond [cache] max_size (default
"4GiB") are removed.`

func runCache(ctx context.Context, env Env, args []string) error {
	if len(args) > 0 && args[0] == "clean" {
		return runCacheClean(ctx, env, args[1:])
	}
	fs := newFlagSet(env, "cache", "clean [flags]", cacheHelp)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "pkginitrd cache: want a subcommand: clean\n")
	return errUsage
}

func runCacheClean(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "cache clean", "[flags]", cleanHelp)
	dir := fs.String("cache-dir", "", "cache directory (default /var/cache/pkginitrd as root, else $XDG_CACHE_HOME/pkginitrd or ~/.cache/pkginitrd)")
	older := fs.Duration("older-than", 0, "remove only unpacked package trees unused for this long, e.g. 720h (30 days)")
	verbose := fs.Bool("verbose", false, "log progress")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *older < 0 {
		fmt.Fprintf(env.Stderr, "pkginitrd cache clean: unexpected arguments %q\n", args)
		return errUsage
	}
	if *dir == "" {
		d, err := cache.Dir(env.Getenv)
		if err != nil {
			return err
		}
		*dir = d
	}
	r, err := cache.Clean(ctx, *dir, *older, newLogger(env.Stderr, *verbose, false))
	if err != nil {
		return err
	}
	what := "items"
	if *older > 0 {
		what = "package trees"
	}
	fmt.Fprintf(env.Stdout, "removed %d %s (%.1f MiB) from %s\n", r.Entries, what, float64(r.Bytes)/(1<<20), *dir)
	return nil
}
