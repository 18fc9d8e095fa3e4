package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/pkginitrd/pkginitrd/image"
	"github.com/pkginitrd/pkginitrd/image/cpio"
	"github.com/pkginitrd/pkginitrd/image/manifest"
)

func runInspect(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "inspect", "[flags] IMAGE | --diff A B", `
List every segment of an initramfs image (offset, compression, number of
entries) and the files in it, like 'ls -l'; for a pkginitrd image also the
packages, kernel modules and build options it records about itself
(`+manifest.Path+`). Reads images made by pkginitrd, dracut, mkinitcpio
and initramfs-tools: uncompressed early cpio segments (microcode) followed
by gzip, zstd, xz, lz4 (legacy), bzip2 or lzma compressed archives.

With --diff, compare two images: the files added, removed and changed
(type, mode, owner, size, SHA-256, symlink target, device numbers; not
mtimes) and, for two pkginitrd images, the packages, modules and build
options that changed. Exit status 0 when they are the same, 1 when they
differ, 2 on error, as diff(1).`)
	extract := fs.String("extract", "", "unpack all segments into this directory (later segments override earlier ones, as in the kernel)")
	summary := fs.Bool("summary", false, "print only the segment table and the image's manifest, not the files")
	diffMode := fs.Bool("diff", false, "compare two images A B (exit 0 same, 1 different, 2 error)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *diffMode {
		if fs.NArg() != 2 || *extract != "" {
			fmt.Fprintln(env.Stderr, "pkginitrd inspect: --diff wants two images A B and no --extract (see --help)")
			return errUsage
		}
		return runDiff(ctx, env, fs.Arg(0), fs.Arg(1))
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(env.Stderr, "pkginitrd inspect: want exactly one IMAGE (see --help)")
		return errUsage
	}
	path := fs.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if *extract != "" {
		if err := os.MkdirAll(*extract, 0o755); err != nil {
			return err
		}
		skipped, err := image.Extract(ctx, f, info.Size(), *extract)
		if err != nil {
			return fmt.Errorf("extract %s: %w", path, err)
		}
		for _, s := range skipped {
			fmt.Fprintf(env.Stderr, "pkginitrd inspect: skipped %s (device nodes need root)\n", s)
		}
		return nil
	}
	segs, err := image.Inspect(f, info.Size())
	if err == nil && len(segs) == 0 {
		err = image.ErrNoArchive
	}
	if err != nil {
		return fmt.Errorf("inspect %s: %w", path, err)
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(w, "SEGMENT\tOFFSET\tCOMPRESSION\tENTRIES\n")
	for i, s := range segs {
		fmt.Fprintf(w, "%d\t%d\t%s\t%d\n", i, s.Offset, s.Compression, len(s.Entries))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := printManifest(ctx, env.Stdout, f, info.Size()); err != nil {
		return fmt.Errorf("inspect %s: %w", path, err)
	}
	if *summary {
		return nil
	}
	for i, s := range segs {
		fmt.Fprintf(env.Stdout, "\nsegment %d (%s at offset %d):\n", i, s.Compression, s.Offset)
		w := tabwriter.NewWriter(env.Stdout, 0, 8, 1, ' ', tabwriter.AlignRight)
		for _, h := range s.Entries {
			fmt.Fprintf(w, "%s\t%d\t %s\n", modeString(h), h.Size, entryName(h))
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func modeString(h cpio.Header) string {
	m := fs.FileMode(h.Mode & 0o777)
	switch h.Mode & cpio.TypeMask {
	case cpio.TypeDir:
		m |= fs.ModeDir
	case cpio.TypeSymlink:
		m |= fs.ModeSymlink
	case cpio.TypeChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case cpio.TypeBlock:
		m |= fs.ModeDevice
	case cpio.TypeFifo:
		m |= fs.ModeNamedPipe
	case cpio.TypeSocket:
		m |= fs.ModeSocket
	}
	if h.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if h.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if h.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m.String()
}

func entryName(h cpio.Header) string {
	switch h.Mode & cpio.TypeMask {
	case cpio.TypeSymlink:
		return h.Name + " -> " + h.Linkname
	case cpio.TypeChar, cpio.TypeBlock:
		return fmt.Sprintf("%s (%d,%d)", h.Name, h.RdevMajor, h.RdevMinor)
	}
	return h.Name
}

// printManifest prints what a pkginitrd image says about itself; other
// images print nothing.
func printManifest(ctx context.Context, out io.Writer, r io.ReaderAt, size int64) error {
	m, err := manifest.Read(ctx, r, size)
	if errors.Is(err, manifest.ErrNone) {
		return nil
	}
	if err != nil {
		return err
	}
	o := m.Options
	fmt.Fprintf(out, "\n%s image, kernel %s\n", m.Generator, m.KernelVersion)
	fmt.Fprintf(out, "build options: distribution=%s release=%s arch=%s backend=%s generic=%t compression=%s source_date_epoch=%d\n",
		o.Distribution, o.Release, o.Arch, o.Backend, o.Generic, o.Compression, o.SourceDateEpoch)
	for _, l := range []struct {
		name string
		list []string
	}{{"features", o.Features}, {"extra packages", o.ExtraPackages}, {"includes", o.Includes}} {
		if len(l.list) > 0 {
			fmt.Fprintf(out, "%s: %s\n", l.name, strings.Join(l.list, " "))
		}
	}
	fmt.Fprintf(out, "\npackages (%d):\n", len(m.Packages))
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	for _, p := range m.Packages {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", p.Name, p.Version, p.Arch, strings.TrimSpace(p.Repository+" "+p.Suite))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nmodules (%d): %s\n", len(m.Modules), strings.Join(m.Modules, " "))
	return nil
}
