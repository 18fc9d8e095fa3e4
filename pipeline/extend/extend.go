// Package extend adds host-specific files, kernel modules and stage0
// configuration to a prebuilt initramfs image without rebuilding it: the
// output is the base image's bytes, unchanged, followed by one compressed
// cpio segment. The kernel unpacks segments in order and a later file
// replaces an earlier one of the same name, so files that must grow (the
// module index, the extension configuration) are written as the union of
// the base's and the additions.
package extend

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/pkginitrd/pkginitrd/image"
	"github.com/pkginitrd/pkginitrd/image/cpio"
	"github.com/pkginitrd/pkginitrd/internal/atomicfile"
	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
)

// Include copies a host file or directory into the addition.
type Include struct {
	Src, Dest string
}

// Options are the inputs of one extension.
type Options struct {
	Base, Output string
	Includes     []Include
	// Modules are added with their dependencies (those the base lacks)
	// and loaded at boot (force_load).
	Modules []string
	// ModulesDir is the module tree of the base's kernel ("" =
	// /usr/lib/modules/KVER, KVER from the base image).
	ModulesDir string
	// Crypttab is a host crypttab added as /etc/crypttab ("" = none).
	Crypttab string
	// Cmdline entries are kernel command-line text stage0 applies before
	// the real command line (which wins); each entry may hold several words.
	Cmdline     []string
	Compression compress.Format // of the addition; "" = the base's last segment's
	Mtime       int64           // of every entry: SOURCE_DATE_EPOCH, or 0
	Mode        fs.FileMode     // of the output; 0 = image.DefaultMode
	CacheDir    string          // for decompressed modules ("" = keep them as the host has them)
	Logger      *slog.Logger
}

// Result describes the extended image.
type Result struct {
	BaseSize   int64  // the base's bytes, an exact prefix of the output
	BaseSHA256 string // hex SHA-256 of the base
	Size       int64
	SHA256     string
	Entries    int      // entries of the added segment
	Modules    []string // modules added (the base lacked them)
}

// base is what Run needs to know of the base image.
type base struct {
	files  map[string]image.File
	conf   *bootconf.Config // nil: not a pkginitrd image
	ext    bootconf.Extension
	kver   string
	modDir string // module directory in the image, e.g. "usr/lib/modules/6.1.0-26-amd64"
	last   string // compression of its last segment
}

// Run writes opts.Output: the base image followed by the addition.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	in, err := os.Open(opts.Base)
	if err != nil {
		return nil, fmt.Errorf("extend: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return nil, fmt.Errorf("extend: %w", err)
	}
	b, err := readBase(ctx, in, st.Size())
	if err != nil {
		return nil, fmt.Errorf("extend: base %s: %w", opts.Base, err)
	}
	t, added, err := addition(ctx, b, opts)
	if err != nil {
		return nil, fmt.Errorf("extend %s: %w", opts.Base, err)
	}
	comp := opts.Compression
	if comp == "" {
		comp = compress.Format(b.last)
	}
	if comp, err = compress.ByName(string(comp)); err != nil {
		return nil, fmt.Errorf("extend: %w", err)
	}
	res, err := write(ctx, in, opts, resolved(t, b.files), comp)
	if err != nil {
		return nil, fmt.Errorf("extend: write %s: %w", opts.Output, err)
	}
	res.Modules = added
	return res, nil
}

// wantFile selects the base files Run reads: its configuration and the
// text module index.
func wantFile(name string) bool {
	if name == bootconf.Path || name == bootconf.ExtensionPath {
		return true
	}
	return isModuleIndex(name)
}

// isModuleIndex reports whether name is a text index file of a module
// directory: (usr/)lib/modules/KVER/modules.*, not depmod's binary .bin.
func isModuleIndex(name string) bool {
	rest, ok := strings.CutPrefix(strings.TrimPrefix(name, "usr/"), "lib/modules/")
	kver, file, ok2 := strings.Cut(rest, "/")
	return ok && ok2 && kver != "" && strings.HasPrefix(file, "modules.") && !strings.Contains(file, "/") && !strings.HasSuffix(file, ".bin")
}

// readBase reads the base's files, configuration and module directory.
func readBase(ctx context.Context, r io.ReaderAt, size int64) (*base, error) {
	files, segs, err := image.Files(ctx, r, size, wantFile)
	if err != nil {
		return nil, err
	}
	b := &base{files: files, last: segs[len(segs)-1].Compression}
	switch b.last {
	case string(compress.LZ4), string(compress.BZip2), string(compress.LZMA):
		return nil, fmt.Errorf("its last segment is %s, whose end the kernel cannot tell: it would read an appended segment as part of it; rebuild it with zstd, gzip or xz", b.last)
	}
	if f, ok := files[bootconf.Path]; ok {
		if b.conf, err = bootconf.Parse(strings.NewReader(string(f.Data))); err != nil {
			return nil, err
		}
		b.kver, b.modDir = b.conf.KernelVersion, strings.TrimPrefix(b.conf.ModulesDir, "/")
	}
	if f, ok := files[bootconf.ExtensionPath]; ok {
		ext, err := bootconf.ParseExtension(strings.NewReader(string(f.Data)))
		if err != nil {
			return nil, err
		}
		b.ext = *ext
	}
	if b.modDir == "" { // another generator's image: its module directory
		var dirs []string
		for name := range files {
			if path.Base(name) == "modules.dep" && isModuleIndex(name) {
				dirs = append(dirs, path.Dir(name))
			}
		}
		slices.Sort(dirs)
		if len(dirs) > 0 {
			b.modDir = dirs[len(dirs)-1]
			b.kver = path.Base(b.modDir)
		}
	}
	return b, nil
}

// addition builds the tree of the added segment and returns the modules
// it adds.
func addition(ctx context.Context, b *base, opts Options) (*fstree.Tree, []string, error) {
	t := fstree.New()
	incs := opts.Includes
	if opts.Crypttab != "" {
		incs = append(slices.Clone(incs), Include{Src: opts.Crypttab, Dest: "etc/crypttab"})
	}
	for _, inc := range incs {
		if err := t.AddHostPath(inc.Src, inc.Dest, "include "+inc.Src); err != nil {
			return nil, nil, err
		}
	}
	var ext bootconf.Extension
	for _, c := range opts.Cmdline {
		if len(cmdline.Parse(c).AfterDashes) > 0 || strings.TrimSpace(c) == "--" {
			return nil, nil, fmt.Errorf("--cmdline %q: \"--\" would hand the real command line to init", c)
		}
		ext.Cmdline = append(ext.Cmdline, c)
	}
	var added []string
	if len(opts.Modules) > 0 {
		var err error
		if added, ext.ForceLoad, err = addModules(ctx, t, b, opts); err != nil {
			return nil, nil, err
		}
	}
	if len(ext.Cmdline) > 0 || len(ext.ForceLoad) > 0 {
		if err := addExtension(t, b, ext); err != nil {
			return nil, nil, err
		}
	}
	if t.Len() == 0 {
		return nil, nil, errors.New("nothing to add: give --include, --module, --crypttab or --cmdline")
	}
	return t, added, nil
}

// addExtension adds the extension configuration, merged with the base's.
func addExtension(t *fstree.Tree, b *base, ext bootconf.Extension) error {
	switch {
	case b.conf == nil:
		return fmt.Errorf("no %s: not a pkginitrd image, so --cmdline and --module (loaded by stage0) cannot apply; --include and --crypttab can", bootconf.Path)
	case b.conf.Version < bootconf.ExtensionsSince:
		return fmt.Errorf("its stage0 (configuration version %d) reads no extension (version %d and later do): rebuild it with this pkginitrd", b.conf.Version, bootconf.ExtensionsSince)
	}
	data, err := bootconf.MarshalExtension(b.ext.Merge(ext), min(b.conf.Version, bootconf.Version))
	if err != nil {
		return err
	}
	return t.Replace(fstree.Entry{Path: bootconf.ExtensionPath, Kind: fstree.File, Mode: 0o644, Data: data, Size: int64(len(data)), Origin: "pkginitrd extend"})
}

// resolved returns t with its paths as the kernel's unpacking over the base
// will create them: parent directories that are symlinks in the base (lib
// → usr/lib) followed, and directories the base has keeping its mode
// (unpacking a directory entry sets the mode of an existing directory).
func resolved(t *fstree.Tree, files map[string]image.File) *fstree.Tree {
	out := fstree.New()
	for _, e := range t.Sorted() {
		c := *e
		if c.Kind == fstree.Dir {
			c.Path = resolvePath(files, c.Path, 0)
		} else {
			c.Path = path.Join(resolvePath(files, path.Dir(c.Path), 0), path.Base(c.Path))
		}
		_ = out.Replace(c) // a directory again, or the same file: nothing to report
	}
	for _, e := range out.Sorted() {
		if f, ok := files[e.Path]; ok && e.Kind == fstree.Dir && f.Header().Type() == cpio.TypeDir {
			e.Mode = f.Header().FileMode() & (fs.ModePerm | fs.ModeSetgid | fs.ModeSetuid | fs.ModeSticky)
		}
	}
	return out
}

// resolvePath follows the base's symlinks in p (relative to the image root).
func resolvePath(files map[string]image.File, p string, hops int) string {
	if p == "." || p == "" || hops > 40 {
		return p
	}
	parts := strings.Split(p, "/")
	cur := ""
	for i, part := range parts {
		next := path.Join(cur, part)
		f, ok := files[next]
		if !ok || f.Header().Type() != cpio.TypeSymlink {
			cur = next
			continue
		}
		target := f.Header().Linkname
		if path.IsAbs(target) {
			next = strings.TrimPrefix(path.Clean(target), "/")
		} else {
			next = path.Join(cur, target)
		}
		if strings.HasPrefix(next, "../") || next == ".." {
			return p // leaves the image: the kernel would not get there either
		}
		return resolvePath(files, path.Join(append([]string{next}, parts[i+1:]...)...), hops+1)
	}
	return cur
}

// write writes the base's bytes, NUL padding to a 4-byte boundary (as the
// kernel wants before an uncompressed archive, harmless before a
// compressed one), then t as one compressed cpio archive.
func write(ctx context.Context, in *os.File, opts Options, t *fstree.Tree, comp compress.Format) (*Result, error) {
	mode := opts.Mode
	if mode == 0 {
		mode = image.DefaultMode
	}
	out, err := atomicfile.Create(opts.Output, mode)
	if err != nil {
		return nil, err
	}
	defer out.Cleanup()
	sum, baseSum := sha256.New(), sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(out, sum), 1<<20)
	n, err := io.Copy(io.MultiWriter(bw, baseSum), io.NewSectionReader(in, 0, 1<<62))
	if err != nil {
		return nil, err
	}
	res := &Result{BaseSize: n, BaseSHA256: hex.EncodeToString(baseSum.Sum(nil))}
	pad := (4 - n%4) % 4
	if _, err := bw.Write(make([]byte, pad)); err != nil {
		return nil, err
	}
	zw, err := compress.NewWriter(comp, bw)
	if err != nil {
		return nil, err
	}
	st, err := image.WriteArchive(ctx, zw, t, image.ArchiveOptions{Mtime: opts.Mtime})
	if cerr := zw.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%s: %w", comp, cerr)
	}
	if err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if err := out.Commit(); err != nil {
		return nil, err
	}
	res.Entries, res.SHA256 = st.Entries, hex.EncodeToString(sum.Sum(nil))
	if fi, err := os.Stat(opts.Output); err == nil {
		res.Size = fi.Size()
	}
	return res, nil
}
