package modules

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/pkginitrd/pkginitrd/internal/atomicfile"

	"github.com/pkginitrd/pkginitrd/internal/kmod"
)

// cacheVersion changes whenever the cache file or kmod.ModInfo changes shape.
const cacheVersion = 1

// metaCache is the on-disk cache of module metadata for one module
// directory: a JSON file in the cache directory named after a hash of the
// module directory's path, mapping each module's relative path to its size,
// mtime and ModInfo. An entry is used only when size and mtime still match.
// A nil *metaCache is a disabled cache.
type metaCache struct {
	file  string
	log   *slog.Logger
	data  cacheFile
	dirty bool
}

type cacheFile struct {
	Version int                   `json:"version"`
	Dir     string                `json:"dir"`
	Modules map[string]cacheEntry `json:"modules"`
}

type cacheEntry struct {
	Size  int64        `json:"size"`
	Mtime int64        `json:"mtime"`
	Info  kmod.ModInfo `json:"info"`
}

// openCache reads the cache for module directory dir from cacheDir. A
// missing, unreadable or outdated file gives an empty cache.
func openCache(cacheDir, dir string, log *slog.Logger) *metaCache {
	if cacheDir == "" {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	sum := sha256.Sum256([]byte(abs))
	c := &metaCache{
		file: filepath.Join(cacheDir, "modinfo-"+hex.EncodeToString(sum[:8])+".json"),
		log:  log,
		data: cacheFile{Version: cacheVersion, Dir: abs, Modules: map[string]cacheEntry{}},
	}
	raw, err := os.ReadFile(c.file)
	if err != nil {
		if !os.IsNotExist(err) {
			log.Warn("module metadata cache unreadable, ignoring it", "file", c.file, "err", err)
		}
		return c
	}
	var f cacheFile
	if err := json.Unmarshal(raw, &f); err != nil || f.Version != cacheVersion || f.Dir != abs || f.Modules == nil {
		log.Warn("module metadata cache invalid or outdated, ignoring it", "file", c.file, "err", err)
		return c
	}
	c.data = f
	return c
}

func (c *metaCache) get(rel string, size, mtime int64) (*kmod.ModInfo, bool) {
	if c == nil {
		return nil, false
	}
	e, ok := c.data.Modules[rel]
	if !ok || e.Size != size || e.Mtime != mtime {
		return nil, false
	}
	return &e.Info, true
}

// retain drops the entries whose path keep rejects.
func (c *metaCache) retain(keep func(rel string) bool) {
	if c == nil {
		return
	}
	for rel := range c.data.Modules {
		if !keep(rel) {
			delete(c.data.Modules, rel)
			c.dirty = true
		}
	}
}

func (c *metaCache) put(rel string, size, mtime int64, mi *kmod.ModInfo) {
	if c == nil {
		return
	}
	c.data.Modules[rel] = cacheEntry{Size: size, Mtime: mtime, Info: *mi}
	c.dirty = true
}

// save writes the cache atomically if it changed.
func (c *metaCache) save() error {
	if c == nil || !c.dirty {
		return nil
	}
	raw, err := json.Marshal(&c.data)
	if err != nil {
		return fmt.Errorf("module metadata cache: %w", err)
	}
	if err := writeFileAtomic(c.file, raw); err != nil {
		return fmt.Errorf("module metadata cache: %w", err)
	}
	c.dirty = false
	return nil
}

// writeFileAtomic writes data to file through a temporary file in the same
// directory, so that readers never see a partial file.
func writeFileAtomic(file string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(file, bytes.NewReader(data), 0o644)
}
