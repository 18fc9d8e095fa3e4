// Package cache owns pkginitrd's cache directory (package lists, archives,
// unpacked trees, module metadata):
//   - where it is: one per user, never a shared path (Dir);
//   - who may use it: only a directory owned by the invoking user and
//     writable by nobody else, kept at mode 0700 (Open);
//   - the lock builds share, so that cleaning never removes what a running
//     build uses;
//   - removing what a killed build left behind, unpacked trees beyond a
//     size cap (least recently used first), and everything on request
//     (Clean).
package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// TreesDir is the subdirectory of unpacked package trees, one directory per
// entry; the garbage collector removes whole entries. Work in progress is
// in TempPrefix directories beside them.
const TreesDir = "trees"

// TempPrefix starts the names of temporary directories in TreesDir.
const TempPrefix = ".tmp-"

// rootDir is root's cache directory.
const rootDir = "/var/cache/pkginitrd"

// Dir returns the invoking user's cache directory: /var/cache/pkginitrd for
// root; otherwise $XDG_CACHE_HOME/pkginitrd, then $HOME/.cache/pkginitrd.
// Without either it is an error: a shared fallback such as $TMPDIR could be
// prepared by another user.
func Dir(getenv func(string) string) (string, error) {
	return dirFor(os.Geteuid(), getenv)
}

func dirFor(uid int, getenv func(string) string) (string, error) {
	if uid == 0 {
		return rootDir, nil
	}
	if x := getenv("XDG_CACHE_HOME"); filepath.IsAbs(x) { // the XDG spec ignores relative paths
		return filepath.Join(x, "pkginitrd"), nil
	}
	if h := getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".cache", "pkginitrd"), nil
	}
	return "", errors.New("no cache directory: XDG_CACHE_HOME and HOME are unset (or not absolute); set one, or pass --cache-dir")
}

// Options configure Open.
type Options struct {
	// MaxSize caps the unpacked trees, in bytes: when a build ends and no
	// other build runs, the least recently used trees beyond it are
	// removed. 0 keeps everything.
	MaxSize int64
	Logger  *slog.Logger // nil discards logs
}

// Cache is a cache directory in use by a build: it holds the shared lock
// until Close.
type Cache struct {
	dir  string
	lock *os.File
	opts Options
}

// Open prepares dir for a build and takes the shared lock that every build
// holds while it uses the cache:
//   - dir is created (mode 0700) or checked: it must be a directory owned by
//     the invoking user and writable by nobody else; a wider mode is
//     narrowed to 0700;
//   - when no other build holds the lock, what a killed build left behind
//     is removed (temporary trees and downloads, and the unpacked trees of
//     pkginitrd versions that keyed them by file name).
func Open(ctx context.Context, dir string, opts Options) (*Cache, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := prepare(dir, os.Geteuid()); err != nil {
		return nil, err
	}
	f, err := openLock(dir)
	if err != nil {
		return nil, err
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		removeStale(dir, opts.Logger)
	}
	// Converting the lock is not atomic: a cleaner may get in between,
	// before this build uses anything.
	if err := waitLock(ctx, f, syscall.LOCK_SH, opts.Logger); err != nil {
		f.Close()
		return nil, err
	}
	return &Cache{dir: dir, lock: f, opts: opts}, nil
}

// Close collects garbage when a size cap is set and no other build holds
// the lock, then releases the lock.
func (c *Cache) Close() error {
	defer c.lock.Close()
	if c.opts.MaxSize <= 0 || syscall.Flock(int(c.lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		return nil // another build runs: the last one collects
	}
	r, err := collect(c.dir, time.Time{}, c.opts.MaxSize)
	if r.Entries > 0 {
		c.opts.Logger.Info("removed least recently used package trees", "cache", c.dir, "trees", r.Entries, "bytes", r.Bytes, "max_size", c.opts.MaxSize)
	}
	return err
}

// Removed counts what cleaning removed.
type Removed struct {
	Entries int   // unpacked trees (or, cleaning everything, top-level items)
	Bytes   int64 // disk space freed
}

// Clean removes, under the exclusive lock (waiting for running builds),
// the unpacked trees not used for olderThan, or with olderThan 0 the
// whole contents of the cache directory dir. A missing dir is clean.
func Clean(ctx context.Context, dir string, olderThan time.Duration, log *slog.Logger) (Removed, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return Removed{}, nil
	}
	if err := prepare(dir, os.Geteuid()); err != nil {
		return Removed{}, err
	}
	f, err := openLock(dir)
	if err != nil {
		return Removed{}, err
	}
	defer f.Close()
	if err := waitLock(ctx, f, syscall.LOCK_EX, log); err != nil {
		return Removed{}, err
	}
	if olderThan > 0 {
		return collect(dir, time.Now().Add(-olderThan), 0)
	}
	return removeAllIn(dir)
}

// prepare creates dir (0700) or checks that uid owns it and nobody else
// can write it, and narrows its mode to 0700.
func prepare(dir string, uid int) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cache directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("cache directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("cache directory %s is not a directory", dir)
	case !ok || int(st.Uid) != uid:
		return fmt.Errorf("cache directory %s is owned by uid %d, not by the invoking user (uid %d): whoever owns it controls what goes into images; use a directory of your own (--cache-dir)", dir, st.Uid, uid)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("cache directory %s is writable by group or others (mode %04o): anyone could change what goes into images; remove it, or check its contents and chmod 700 it", dir, fi.Mode().Perm())
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("cache directory: %w", err)
		}
	}
	return nil
}

func openLock(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cache lock: %w", err)
	}
	return f, nil
}

// waitLock takes the flock how (LOCK_SH or LOCK_EX) on f, waiting until
// ctx ends.
func waitLock(ctx context.Context, f *os.File, how int, log *slog.Logger) error {
	for waited := false; ; waited = true {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if !waited {
			log.Info("waiting for another pkginitrd using the cache", "lock", f.Name())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// staleGlobs match what only a killed build leaves behind (relative to the
// cache directory): temporary trees, apt's temporary download directories,
// and "unpacked", the trees of versions that keyed them by file name.
func staleGlobs() []string {
	return []string{filepath.Join(TreesDir, TempPrefix+"*"), filepath.Join("apt", "*", "download-*"), "unpacked"}
}

// removeStale removes what staleGlobs match; the caller holds the
// exclusive lock.
func removeStale(dir string, log *slog.Logger) {
	for _, g := range staleGlobs() {
		m, _ := filepath.Glob(filepath.Join(dir, g))
		for _, p := range m {
			log.Debug("removing a killed build's leftovers", "path", p)
			if err := RemoveAll(p); err != nil {
				log.Warn("cannot remove a killed build's leftovers", "path", p, "err", err)
			}
		}
	}
}

// entry is an unpacked tree as the garbage collector sees it.
type entry struct {
	path string
	used time.Time // mtime of the entry directory, set on each use
	size int64
}

// collect removes the trees last used before cutoff and then, with maxSize
// > 0, the least recently used ones until the rest fit in maxSize. The
// caller holds the exclusive lock.
func collect(dir string, cutoff time.Time, maxSize int64) (Removed, error) {
	ents, total, err := trees(filepath.Join(dir, TreesDir))
	if err != nil {
		return Removed{}, err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].used.Before(ents[j].used) })
	var r Removed
	for _, e := range ents {
		if !e.used.Before(cutoff) && (maxSize <= 0 || total <= maxSize) {
			break
		}
		if err := Discard(e.path); err != nil {
			return r, fmt.Errorf("remove %s: %w", e.path, err)
		}
		r.Entries++
		r.Bytes += e.size
		total -= e.size
	}
	return r, nil
}

// trees lists the entries of the trees directory with their disk usage.
func trees(dir string) ([]entry, int64, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("list cache: %w", err)
	}
	var ents []entry
	var total int64
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".") || !de.IsDir() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		e := entry{path: filepath.Join(dir, de.Name()), used: fi.ModTime(), size: diskUsage(filepath.Join(dir, de.Name()))}
		ents = append(ents, e)
		total += e.size
	}
	return ents, total, nil
}

// diskUsage is the space the files below p occupy (sparse files count
// what they use).
func diskUsage(p string) int64 {
	var n int64
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil //nolint:nilerr // best effort: an unreadable part counts 0
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}

// removeAllIn empties dir except its lock file.
func removeAllIn(dir string) (Removed, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return Removed{}, fmt.Errorf("clean cache: %w", err)
	}
	var r Removed
	for _, de := range des {
		if de.Name() == "lock" {
			continue
		}
		p := filepath.Join(dir, de.Name())
		size := diskUsage(p)
		if err := RemoveAll(p); err != nil {
			return r, fmt.Errorf("clean cache: %w", err)
		}
		r.Entries++
		r.Bytes += size
	}
	return r, nil
}

// Discard removes the directory dir after moving it into a new temporary
// directory beside it (TempPrefix), so that an interrupted removal leaves
// only what the next build removes, never a half-removed entry.
func Discard(dir string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), TempPrefix)
	if err != nil {
		return err
	}
	if err := os.Rename(dir, filepath.Join(tmp, "old")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		_ = RemoveAll(tmp) // empty
		return err
	}
	return RemoveAll(tmp)
}

// RemoveAll removes p even when a package made some directories in it
// read-only, which stops os.RemoveAll for a non-root user.
func RemoveAll(p string) error {
	if os.RemoveAll(p) == nil {
		return nil
	}
	// Make read-only directories writable, then try again.
	_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(q, 0o700) // best effort: RemoveAll reports what remains
		}
		return nil
	})
	return os.RemoveAll(p)
}
