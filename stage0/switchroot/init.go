// Package switchroot hands the machine over from the initramfs to the real
// root filesystem the way util-linux switch_root(8) does: move the API
// mounts, free the initramfs, make the new root "/", exec its init.
package switchroot

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// DefaultInits are tried, in order, when init= is not given or not found
// (the kernel's own fallbacks, minus /bin/sh).
func DefaultInits() []string {
	return []string{"/sbin/init", "/etc/init", "/bin/init"}
}

// ResolveInit returns the first of candidates that is an executable file
// inside newRoot, as a path valid after the switch (inside the new root).
// Symlinks are followed within newRoot: an absolute target such as
// /sbin/init -> /lib/systemd/systemd is resolved against newRoot, not
// against the initramfs.
func ResolveInit(newRoot string, candidates ...string) (string, error) {
	var errs []error
	for _, c := range candidates {
		if c == "" {
			continue
		}
		p, err := resolveIn(newRoot, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c, err))
			continue
		}
		st, err := os.Stat(filepath.Join(newRoot, p))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c, err))
			continue
		}
		if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
			errs = append(errs, fmt.Errorf("%s: not an executable file", c))
			continue
		}
		return p, nil
	}
	return "", fmt.Errorf("no init in %s: %w", newRoot, errors.Join(errs...))
}

// resolveIn resolves name (absolute, as seen from inside root) following
// symlinks as if root were "/", and returns the resolved absolute path
// inside root. ".." never climbs above root.
func resolveIn(root, name string) (string, error) {
	const maxLinks = 40
	links := 0
	todo := strings.Split(strings.TrimPrefix(path.Clean("/"+name), "/"), "/")
	cur := "/"
	for len(todo) > 0 {
		part := todo[0]
		todo = todo[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, part)
		target, err := os.Readlink(filepath.Join(root, next))
		switch {
		case errors.Is(err, syscall.EINVAL): // exists, not a symlink
			cur = next
			continue
		case err != nil:
			return "", err
		}
		links++
		if links > maxLinks {
			return "", fmt.Errorf("resolve %s: too many levels of symbolic links", name)
		}
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return cur, nil
}
