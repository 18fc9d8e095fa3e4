package device

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/blkid"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
)

// Link creates the udev-style symlinks for devs under devRoot/disk:
// by-uuid and by-label (filesystems, crypto containers, swap), by-partuuid
// and by-partlabel (partitions), named with udev's \xNN escaping and
// pointing at "../../<node>". Links in those directories that no longer
// belong to a device are removed, so repeated calls track hotplug. The
// first device wins when two share a name, as it does in Find.
func Link(devRoot string, devs []Device) error {
	want := map[string]map[string]string{
		"by-uuid": {}, "by-label": {}, "by-partuuid": {}, "by-partlabel": {},
	}
	add := func(dir, name, node string) {
		if name == "" {
			return
		}
		name = cmdline.EscapeUdev(name)
		if _, dup := want[dir][name]; !dup {
			want[dir][name] = node
		}
	}
	for i := range devs {
		d := &devs[i]
		if d.Info != nil && d.Info.Usage != blkid.UsageRaid {
			add("by-uuid", d.Info.UUID, d.Node)
			add("by-label", d.Info.Label, d.Node)
		}
		if d.Part != nil {
			add("by-partuuid", strings.ToLower(d.Part.UUID), d.Node)
			add("by-partlabel", d.Part.Name, d.Node)
		}
	}
	var errs []error
	for dir, links := range want {
		errs = append(errs, syncDir(filepath.Join(devRoot, "disk", dir), devRoot, links))
	}
	return errors.Join(errs...)
}

// syncDir makes dir hold exactly links (name → node path).
func syncDir(dir, devRoot string, links map[string]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	var errs []error
	for _, e := range ents {
		if _, ok := links[e.Name()]; !ok {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, fmt.Errorf("remove stale link: %w", err))
			}
		}
	}
	for name, node := range links {
		rel, err := filepath.Rel(devRoot, node)
		if err != nil {
			errs = append(errs, fmt.Errorf("link %s: %w", node, err))
			continue
		}
		target := filepath.Join("..", "..", rel)
		p := filepath.Join(dir, name)
		if cur, err := os.Readlink(p); err == nil && cur == target {
			continue
		}
		// Replace atomically: a reader never sees the name missing.
		tmp := p + ".tmp"
		os.Remove(tmp)
		if err := os.Symlink(target, tmp); err != nil {
			errs = append(errs, fmt.Errorf("symlink %s: %w", p, err))
			continue
		}
		if err := os.Rename(tmp, p); err != nil {
			errs = append(errs, fmt.Errorf("symlink %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
