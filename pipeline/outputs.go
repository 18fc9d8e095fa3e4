package pipeline

// The output steps of a build: the image written to a pending file, then
// the kernel beside it, the manifest and the SBOM, all renamed into place
// together by the last step.

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pkginitrd/pkginitrd/image"
	"github.com/pkginitrd/pkginitrd/internal/atomicfile"
	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// imageMode is the mode of the image file: setting (image_mode, octal) if
// given, else the mode of the image being replaced, else image.DefaultMode.
func imageMode(setting, output string) (fs.FileMode, error) {
	if setting != "" {
		m, err := strconv.ParseUint(setting, 8, 32)
		if err != nil || m > 0o777 {
			return 0, fmt.Errorf("image_mode %q: want octal permission bits such as \"0600\"", setting)
		}
		return fs.FileMode(m), nil
	}
	if fi := regularFile(output); fi != nil {
		return fi.Mode().Perm(), nil
	}
	return image.DefaultMode, nil
}

// lockOutputs locks the directories the outputs go to (atomicfile.LockDir)
// and removes the temporaries that killed builds left there; it returns
// the function that unlocks them. Failing to lock only skips the cleaning.
func (b *build) lockOutputs() (unlock func()) {
	imageDir := filepath.Dir(b.opts.Output)
	names := map[string][]string{imageDir: {filepath.Base(b.opts.Output)}}
	for _, m := range []string{b.opts.Manifest, b.opts.SBOM} {
		if m != "" {
			names[filepath.Dir(m)] = append(names[filepath.Dir(m)], filepath.Base(m))
		}
	}
	var locks []*atomicfile.DirLock
	for dir, own := range names {
		stale := func(name string) bool {
			return slices.Contains(own, name) || dir == imageDir && strings.HasPrefix(name, vmlinuzPrefix)
		}
		l, removed, err := atomicfile.LockDir(dir, stale)
		for _, p := range removed {
			b.log.Info("removed a temporary file left by an interrupted build", "path", p)
		}
		if err != nil {
			b.log.Warn("output directory: stale temporaries not removed", "err", err)
		}
		if l != nil {
			locks = append(locks, l)
		}
	}
	return func() {
		for _, l := range locks {
			l.Unlock()
		}
	}
}

// vmlinuzPrefix starts the name of the kernel placed beside the image.
const vmlinuzPrefix = "vmlinuz-"

// vmlinuzPath is where the kernel from a kernel package goes: beside the image.
func (b *build) vmlinuzPath() string {
	return filepath.Join(filepath.Dir(b.opts.Output), vmlinuzPrefix+b.kern.Version)
}

// write writes the image to a pending output (committed by outputs).
func (b *build) write(ctx context.Context) error {
	comp, err := compress.ByName(b.opts.Config.Compression)
	if err != nil {
		return fmt.Errorf("compression: %w", err)
	}
	warnExposedIncludes(b.tree, b.mode, b.log)
	var f io.Writer
	if b.opts.UKI != nil {
		f, err = b.ukiInitrd() // the uki step writes Output
	} else {
		f, err = b.out.Create(b.opts.Output, b.mode)
	}
	if err != nil {
		return err
	}
	res, err := image.Write(ctx, f, b.tree, image.Options{Compression: comp, Mtime: b.opts.Mtime, Sums: b.opts.SBOM != ""})
	if err != nil {
		return fmt.Errorf("write %s: %w", b.opts.Output, err)
	}
	res.Path = b.opts.Output
	b.result = &Result{Image: res, UKI: b.opts.UKI != nil}
	return nil
}

// warnExposedIncludes warns about each --include'd file that others may
// not read on the host but may read in an image of the given mode.
func warnExposedIncludes(t *fstree.Tree, mode fs.FileMode, log *slog.Logger) {
	if mode&0o044 == 0 {
		return
	}
	for _, e := range t.Sorted() {
		if e.Kind == fstree.File && strings.HasPrefix(e.Origin, includeOrigin) && e.Mode&0o004 == 0 {
			log.Warn("included file is not world-readable on the host but others can read the image (set image_mode = \"0600\" or pass --mode 0600)", "file", e.Source, "image_mode", fmt.Sprintf("%04o", mode))
		}
	}
}

// outputs prepares the kernel beside the image, the manifest and the
// SBOM, then renames all outputs into place.
func (b *build) outputs(context.Context) error {
	if b.kern.Vmlinuz != "" && b.opts.UKI == nil {
		dst := b.vmlinuzPath()
		if err := b.prepareCopy(b.kern.Vmlinuz, dst, 0o644); err != nil {
			return err
		}
		b.result.Vmlinuz = dst
	}
	b.result.Manifest = b.manifest()
	if b.opts.Manifest != "" {
		f, err := b.out.Create(b.opts.Manifest, 0o644)
		if err != nil {
			return err
		}
		if err := b.result.Manifest.Encode(f); err != nil {
			return fmt.Errorf("write %s: %w", b.opts.Manifest, err)
		}
	}
	if b.opts.SBOM != "" {
		if err := b.writeSBOM(); err != nil {
			return err
		}
	}
	return b.out.Commit()
}

// prepareCopy copies src to a pending output dst.
func (b *build) prepareCopy(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	f, err := b.out.Create(dst, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, in); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}
