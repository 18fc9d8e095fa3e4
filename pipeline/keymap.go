package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/keymap"
)

// keymapPath is where the compiled console keymap goes in the image.
const keymapPath = "etc/pkginitrd/keymap.bmap"

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
	cached, _ := filepath.Glob(filepath.Join(etcRoot, "etc", "console-setup", "cached_*.kmap.gz"))
	if len(cached) == 0 {
		return layout, ""
	}
	return layout, cached[0]
}

// addKeymap compiles the console keymap (--keymap, or the host's for a
// host-only image) with the build host's `loadkeys -b` into the image,
// where stage0 loads it before the first passphrase prompt. A host keymap
// that cannot be compiled is a warning; a --keymap one an error.
func (b *build) addKeymap() (bootconf.Keymap, error) {
	name, arg, explicit := b.opts.Keymap, b.opts.Keymap, b.opts.Keymap != ""
	if !explicit && b.host != nil {
		root := b.opts.OSReleaseRoot
		if root == "" {
			root = "/"
		}
		name, arg = hostKeymap(root)
		if name != "" && arg == "" {
			b.log.Warn("the host's console layout has no cached console keymap (run setupcon --save); passphrases use the US layout", "layout", name)
			return bootconf.Keymap{}, nil
		}
	}
	if name == "" || name == "none" || name == "us" {
		return bootconf.Keymap{}, nil // the kernel's own map is US
	}
	data, err := compileKeymap(arg)
	if err != nil && explicit {
		return bootconf.Keymap{}, fmt.Errorf("--keymap %s: %w", arg, err)
	}
	if err != nil {
		b.log.Warn("cannot compile the host's console keymap; passphrases use the US layout", "keymap", name, "err", err)
		return bootconf.Keymap{}, nil
	}
	if err := b.tree.Replace(fstree.Entry{Path: keymapPath, Kind: fstree.File, Mode: 0o644, Data: data, Size: int64(len(data)), Origin: "loadkeys -b " + arg}); err != nil {
		return bootconf.Keymap{}, err
	}
	b.log.Info("console keymap", "keymap", name, "source", arg, "bytes", len(data))
	return bootconf.Keymap{Name: name, Path: "/" + keymapPath}, nil
}

// compileKeymap runs `loadkeys -b arg`, which resolves the keymap's
// includes from the build host's keymap directories and needs no console.
func compileKeymap(arg string) ([]byte, error) {
	loadkeys, err := exec.LookPath("loadkeys")
	if err != nil {
		return nil, errors.New("loadkeys is not installed (package kbd)")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(loadkeys, "-b", arg)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("loadkeys -b %s: %w: %s", arg, err, strings.TrimSpace(stderr.String()))
	}
	if _, err := keymap.Parse(stdout.Bytes()); err != nil {
		return nil, fmt.Errorf("loadkeys -b %s: %w", arg, err)
	}
	return stdout.Bytes(), nil
}
