package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/font"
	"github.com/pkginitrd/pkginitrd/stage0/keymap"
)

// Where the console keymap (compiled) and font (a plain PSF) go in the image.
const (
	keymapPath = "etc/pkginitrd/keymap.bmap"
	fontPath   = "etc/pkginitrd/font.psf"
)

// fontDirs are where kbd and console-setup install console fonts: Debian,
// Arch and Fedora.
func fontDirs() []string {
	return []string{"usr/share/consolefonts", "usr/share/kbd/consolefonts", "usr/lib/kbd/consolefonts"}
}

// addVconsole puts the console keymap, a generic image's keymap set and
// the font into the image's config.
func (b *build) addVconsole(ctx context.Context, bc *bootconf.Config) (err error) {
	if bc.Keymap, err = b.addKeymap(); err != nil {
		return err
	}
	if bc.Keymaps, err = b.addGenericKeymaps(ctx, bc.Keymap.Name); err != nil {
		return err
	}
	bc.Font, err = b.addFont()
	return err
}

// hostKeymap is the host's console keymap: KEYMAP= of etc/vconsole.conf
// (systemd), else Debian's console-setup, whose etc/default/keyboard
// names the XKB layout and whose setupcon caches the console keymap made
// from it in etc/console-setup/cached_*.kmap.gz. name is for the log and
// rd.vconsole.keymap=, arg is what loadkeys reads; both "" when the host
// sets none.
func hostKeymap(etcRoot string) (name, arg string) {
	if km := shellVars(filepath.Join(etcRoot, "etc", "vconsole.conf"))["KEYMAP"]; km != "" {
		return km, km
	}
	kb := shellVars(filepath.Join(etcRoot, "etc", "default", "keyboard"))
	layout := kb["XKBLAYOUT"]
	if layout == "" {
		return "", ""
	}
	if v := kb["XKBVARIANT"]; v != "" {
		layout += "-" + v
	}
	return layout, setupconCached(etcRoot, "cached_setup_keyboard.sh", ".kmap.gz")
}

// setupconCached is the file console-setup's setupcon cached last with the
// suffix: the one its script (etc/console-setup/cached_setup_*.sh) loads,
// since files of an earlier setting stay beside it, else the newest.
// It returns "" when there is none.
func setupconCached(root, script, suffix string) string {
	dir := filepath.Join(root, "etc", "console-setup")
	if data, err := os.ReadFile(filepath.Join(dir, script)); err == nil {
		for _, f := range strings.FieldsFunc(string(data), func(r rune) bool { return r == '\'' || r == '"' || r == ' ' || r == '\n' }) {
			if strings.HasPrefix(f, "/etc/console-setup/cached_") && strings.HasSuffix(f, suffix) {
				if p := filepath.Join(root, f); regularFile(p) != nil {
					return p
				}
			}
		}
	}
	cached, _ := filepath.Glob(filepath.Join(dir, "cached_*"+suffix))
	newest, when := "", time.Time{}
	for _, p := range cached {
		if fi := regularFile(p); fi != nil && fi.ModTime().After(when) {
			newest, when = p, fi.ModTime()
		}
	}
	return newest
}

// regularFile is p's FileInfo when p is a regular file, else nil.
func regularFile(p string) fs.FileInfo {
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return fi
	}
	return nil
}

// addKeymap compiles the console keymap (--keymap, or the host's for a
// host-only image) with the build host's `loadkeys -b` into the image,
// where stage0 loads it before the first passphrase prompt. A host keymap
// that cannot be compiled is a warning; a --keymap one an error.
func (b *build) addKeymap() (bootconf.ConsoleFile, error) {
	name, arg, explicit := b.opts.Keymap, b.opts.Keymap, b.opts.Keymap != ""
	if !explicit && b.host != nil {
		name, arg = hostKeymap(b.hostEtcRoot())
		if name != "" && arg == "" {
			b.log.Warn("the host's console layout has no cached console keymap (run setupcon --save); passphrases use the US layout", "layout", name)
			return bootconf.ConsoleFile{}, nil
		}
	}
	if name == "" || name == "none" || name == "us" {
		return bootconf.ConsoleFile{}, nil // the kernel's own map is US
	}
	data, err := compileKeymap(context.Background(), arg)
	if err != nil && explicit {
		return bootconf.ConsoleFile{}, fmt.Errorf("--keymap %s: %w", arg, err)
	}
	if err != nil {
		b.log.Warn("cannot compile the host's console keymap; passphrases use the US layout", "keymap", name, "err", err)
		return bootconf.ConsoleFile{}, nil
	}
	if err := b.tree.Replace(fstree.Entry{Path: keymapPath, Kind: fstree.File, Mode: 0o644, Data: data, Size: int64(len(data)), Origin: "loadkeys -b " + arg}); err != nil {
		return bootconf.ConsoleFile{}, err
	}
	b.log.Info("console keymap", "keymap", name, "source", arg, "bytes", len(data))
	return bootconf.ConsoleFile{Name: name, Path: "/" + keymapPath}, nil
}

// compileKeymap runs `loadkeys -b arg`, which resolves the keymap's
// includes from the build host's keymap directories and needs no console.
func compileKeymap(ctx context.Context, arg string) ([]byte, error) {
	loadkeys, err := exec.LookPath("loadkeys")
	if err != nil {
		return nil, errors.New("loadkeys is not installed (package kbd)")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, loadkeys, "-b", arg)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("loadkeys -b %s: %w: %s", arg, err, strings.TrimSpace(stderr.String()))
	}
	if _, err := keymap.Parse(stdout.Bytes()); err != nil {
		return nil, fmt.Errorf("loadkeys -b %s: %w", arg, err)
	}
	return stdout.Bytes(), nil
}

// hostEtcRoot is where the host's configuration is read: OSReleaseRoot
// (tests), else /.
func (b *build) hostEtcRoot() string {
	if b.opts.OSReleaseRoot != "" {
		return b.opts.OSReleaseRoot
	}
	return "/"
}

// hostFont is the host's console font: FONT= of etc/vconsole.conf
// (systemd; a name in the console font directories or a path), else the
// font Debian's setupcon caches as etc/console-setup/cached_NAME.psf.gz.
// name is for the log and rd.vconsole.font=, file the font's path; file
// is "" when the named font is not installed, both when none is set.
func hostFont(root string) (name, file string) {
	if name = shellVars(filepath.Join(root, "etc", "vconsole.conf"))["FONT"]; name != "" {
		file, _ = findFont(root, name)
		return name, file
	}
	if file = setupconCached(root, "cached_setup_font.sh", ".psf.gz"); file == "" {
		return "", ""
	}
	return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(file), "cached_"), ".psf.gz"), file
}

// findFont resolves a font as setfont does: a path, else NAME with one
// of the usual suffixes in the font directories under root.
func findFont(root, name string) (string, error) {
	if strings.Contains(name, "/") {
		if _, err := os.Stat(name); err != nil {
			return "", err
		}
		return name, nil
	}
	for _, dir := range fontDirs() {
		for _, ext := range []string{".psfu.gz", ".psf.gz", ".psfu", ".psf", ".gz", ""} {
			p := filepath.Join(root, dir, name+ext)
			if regularFile(p) != nil {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("no console font %q in %s", name, strings.Join(fontDirs(), ", "))
}

// addFont puts the console font (--console-font, or the host's for a
// host-only image) into the image, uncompressed and checked, where stage0
// loads it with the keymap. A host font that cannot be read is a warning;
// a --console-font one an error.
func (b *build) addFont() (bootconf.ConsoleFile, error) {
	name, explicit := b.opts.Font, b.opts.Font != ""
	var file string
	var err error
	switch {
	case name == "none":
		return bootconf.ConsoleFile{}, nil
	case explicit:
		if file, err = findFont("/", name); err != nil {
			return bootconf.ConsoleFile{}, fmt.Errorf("--console-font %s: %w", name, err)
		}
	case b.host != nil:
		if name, file = hostFont(b.hostEtcRoot()); name != "" && file == "" {
			b.log.Warn("the host's console font is not installed; prompts use the kernel's font", "font", name)
		}
	}
	if file == "" {
		return bootconf.ConsoleFile{}, nil
	}
	data, f, err := readFont(file)
	if err != nil && explicit {
		return bootconf.ConsoleFile{}, fmt.Errorf("--console-font %s: %w", name, err)
	}
	if err != nil {
		b.log.Warn("cannot read the host's console font; prompts use the kernel's font", "font", name, "err", err)
		return bootconf.ConsoleFile{}, nil
	}
	if err := b.tree.Replace(fstree.Entry{Path: fontPath, Kind: fstree.File, Mode: 0o644, Data: data, Size: int64(len(data)), Origin: file}); err != nil {
		return bootconf.ConsoleFile{}, err
	}
	b.log.Info("console font", "font", name, "source", file, "glyphs", f.String(), "bytes", len(data))
	return bootconf.ConsoleFile{Name: name, Path: "/" + fontPath}, nil
}

// readFont reads a PSF font file, compressed or not, and checks it.
func readFont(file string) ([]byte, *font.Font, error) {
	in, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	defer in.Close()
	r, _, err := compress.DetectReader(in)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, 1<<20)) // the largest PSF is 512 glyphs of 32x32 and a table: about 100 KB
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	f, err := font.Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	return data, f, nil
}
