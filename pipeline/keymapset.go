package pipeline

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/pkginitrd/pkginitrd/internal/atomicfile"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
)

// keymapSetDir is the cache subdirectory of compiled keymap sets.
const keymapSetDir = "keymaps"

// keymapDirs are where loadkeys finds keymaps: Debian's console-data and
// kbd, Arch's and Fedora's kbd.
func keymapDirs() []string {
	return []string{"/usr/share/keymaps", "/usr/share/kbd/keymaps", "/usr/lib/kbd/keymaps"}
}

// compiledKeymap is one keymap of a set: its loadkeys -b output, or why
// it could not be compiled.
type compiledKeymap struct {
	Name string `json:"name"`
	Data []byte `json:"data,omitempty"`
	Err  string `json:"error,omitempty"`
}

// keymapSet is a generic image's keymap set, compiled in the background
// (about 25 ms of loadkeys each, a third of a warm build for the default
// set) or read from the cache, where a set is keyed by its names and the
// stat of loadkeys and of every file under keymapDirs: a kbd or
// console-data update compiles it again. Once wg is done, maps holds the
// result.
type keymapSet struct {
	maps []compiledKeymap
	wg   sync.WaitGroup
	save string // the cache file to write once compiled; "" when read from it
}

// startKeymapSet reads the set of names from the cache in cacheDir or
// starts compiling it, one loadkeys per CPU at a time.
func startKeymapSet(ctx context.Context, cacheDir string, names []string) *keymapSet {
	k := &keymapSet{maps: make([]compiledKeymap, len(names))}
	if len(names) == 0 {
		return k
	}
	if key, err := keymapSetKey(names); err == nil {
		k.save = filepath.Join(cacheDir, keymapSetDir, key+".json")
		if data, err := os.ReadFile(k.save); err == nil && json.Unmarshal(data, &k.maps) == nil && len(k.maps) == len(names) {
			k.save = ""
			return k
		}
	}
	k.maps = make([]compiledKeymap, len(names))
	sem := make(chan struct{}, runtime.NumCPU())
	for i, name := range names {
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			m := compiledKeymap{Name: name}
			var err error
			if strings.ContainsAny(name, "/ ") || name == "" {
				err = errors.New("not a keymap name")
			} else {
				m.Data, err = compileKeymap(ctx, name)
			}
			if err != nil {
				m.Err = err.Error()
			}
			k.maps[i] = m
		}()
	}
	return k
}

// keymapSetKey identifies the set of names as the build host compiles it.
func keymapSetKey(names []string) (string, error) {
	loadkeys, err := exec.LookPath("loadkeys")
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintln(h, strings.Join(names, " "))
	stamp := func(p string, fi fs.FileInfo) {
		fmt.Fprintf(h, "%s %d %d %v\n", p, fi.Size(), fi.ModTime().UnixNano(), fi.Mode())
	}
	fi, err := os.Stat(loadkeys)
	if err != nil {
		return "", err
	}
	stamp(loadkeys, fi)
	for _, dir := range keymapDirs() {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil {
				if fi, err := d.Info(); err == nil {
					stamp(p, fi)
				}
			}
			return nil // a missing or unreadable directory is part of the key as its absence
		})
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

// wait waits for the set and stores a newly compiled one in the cache,
// replacing older sets (a failure to is only logged).
func (k *keymapSet) wait(ctx context.Context, b *build) []compiledKeymap {
	k.wg.Wait()
	if k.save == "" || ctx.Err() != nil {
		return k.maps
	}
	err := os.MkdirAll(filepath.Dir(k.save), 0o700)
	var f *atomicfile.File
	if err == nil {
		f, err = atomicfile.Create(k.save, 0o600)
	}
	if err == nil {
		defer f.Cleanup()
		data, _ := json.Marshal(k.maps) // plain structs: cannot fail
		if _, err = f.Write(data); err == nil {
			err = f.Commit()
		}
	}
	if err != nil {
		b.log.Warn("cannot cache the compiled keymaps", "err", err)
		return k.maps
	}
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(k.save), "*.json"))
	for _, p := range old {
		if p != k.save {
			os.Remove(p)
		}
	}
	return k.maps
}

// addGenericKeymaps adds the [console] generic_keymaps a generic image
// carries for rd.vconsole.keymap= (skipping the default one, skip); the
// names the build host cannot compile are left out with one warning.
func (b *build) addGenericKeymaps(ctx context.Context, skip string) ([]bootconf.ConsoleFile, error) {
	if b.keymaps == nil {
		return nil, nil
	}
	var out []bootconf.ConsoleFile
	var failed []string
	var firstErr string
	for _, m := range b.keymaps.wait(ctx, b) {
		if m.Err != "" {
			failed = append(failed, m.Name)
			firstErr = cmp.Or(firstErr, m.Name+": "+m.Err)
			continue
		}
		if m.Name == skip {
			continue
		}
		p := "etc/pkginitrd/keymaps/" + m.Name + ".bmap"
		if err := b.tree.Replace(fstree.Entry{Path: p, Kind: fstree.File, Mode: 0o644, Data: m.Data, Size: int64(len(m.Data)), Origin: "loadkeys -b " + m.Name}); err != nil {
			return nil, err
		}
		out = append(out, bootconf.ConsoleFile{Name: m.Name, Path: "/" + p})
	}
	if len(failed) > 0 {
		b.log.Warn("generic image: keymaps left out; rd.vconsole.keymap= cannot choose them", "keymaps", strings.Join(failed, " "), "first error", firstErr)
	}
	b.log.Info("generic image keymaps", "count", len(out))
	return out, nil
}
