package unpack

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/pkginitrd/pkginitrd/backends"
	"github.com/pkginitrd/pkginitrd/backends/cache"
)

// ErrChecksum reports an archive whose contents do not match the SHA256 its
// backend verified. A copy inside the cache has been removed, so fetching
// the package again replaces it.
var ErrChecksum = errors.New("unpack: archive does not match its SHA256")

// Cache unpacks archives into a cache directory once, and checks the trees
// it gives out.
type Cache struct {
	Dir    string       // the cache directory: trees are in cache.TreesDir, one per archive SHA256 with the files in "tree" and their list in "index"
	Logger *slog.Logger // warnings about damaged entries; nil discards them
	Limits Limits       // bounds of one unpacked package (see Unpack)
}

// Tree returns p's unpacked tree from the cache, unpacking it first when
// needed. Entries are keyed by the archive's SHA256 (p.SHA256, or computed),
// so another archive of the same name is never served for p, and the
// archive is checked against p.SHA256 before it is unpacked. A stored tree
// is checked against its list first (see (*Tree).check); a damaged one is
// named in a warning and unpacked again.
//
// The tree is built in a temporary directory and renamed into place, so an
// interrupted unpack never leaves an entry that a later run trusts; when
// two processes race, the loser discards its copy. Files on disk never keep
// setuid, setgid or sticky bits: only the list (and so the image) has them.
func (c Cache) Tree(ctx context.Context, p backends.Package) (*Tree, error) {
	if p.Path == "" {
		return nil, fmt.Errorf("unpack %s: package has no archive path", p.Name)
	}
	sum, err := c.archiveSum(p)
	if err != nil {
		return nil, err
	}
	parent := filepath.Join(c.Dir, cache.TreesDir)
	dir := filepath.Join(parent, sum)
	tr, err := c.stored(dir)
	switch {
	case tr != nil:
		return tr, nil
	case err != nil:
		c.log().Warn("cached package tree is damaged; unpacking it again", "package", p.Name, "entry", dir, "problem", err)
		if err := cache.Discard(dir); err != nil {
			return nil, fmt.Errorf("unpack %s: remove damaged %s: %w", p.Name, dir, err)
		}
	}
	if err := c.checkArchive(p); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", p.Name, err)
	}
	tmp, err := os.MkdirTemp(parent, cache.TempPrefix)
	if err != nil {
		return nil, fmt.Errorf("unpack %s: %w", p.Name, err)
	}
	if err := unpackSealed(ctx, p.Path, tmp, c.Limits); err != nil {
		_ = cache.RemoveAll(tmp) // best effort: the next build removes temporaries
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = cache.RemoveAll(tmp) // best effort: the next build removes temporaries
		// Lost a race: another process renamed its complete copy first.
		if tr, _ := c.stored(dir); tr != nil {
			return tr, nil
		}
		return nil, fmt.Errorf("unpack %s: %w", p.Name, err)
	}
	return loadTree(filepath.Join(dir, "tree"), filepath.Join(dir, "index"))
}

func (c Cache) log() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// archiveSum returns the SHA256 that keys p's tree: p.SHA256 when the
// backend knows it (the archive is hashed only when it must be unpacked),
// else the archive's own.
func (c Cache) archiveSum(p backends.Package) (string, error) {
	if p.SHA256 != "" {
		if len(p.SHA256) != 64 || strings.Trim(strings.ToLower(p.SHA256), "0123456789abcdef") != "" {
			return "", fmt.Errorf("unpack %s: bad SHA256 %q", p.Name, p.SHA256)
		}
		return strings.ToLower(p.SHA256), nil
	}
	sum, err := hashFile(p.Path)
	if err != nil {
		return "", fmt.Errorf("unpack %s: %w", p.Name, err)
	}
	return hex.EncodeToString(sum[:]), nil
}

// checkArchive verifies p's archive against p.SHA256 before it is
// unpacked. A mismatching archive inside the cache is removed, so that
// fetching again replaces it.
func (c Cache) checkArchive(p backends.Package) error {
	if p.SHA256 == "" {
		return nil // the key was computed from the archive itself
	}
	sum, err := hashFile(p.Path)
	if err != nil {
		return fmt.Errorf("unpack %s: %w", p.Name, err)
	}
	if hex.EncodeToString(sum[:]) == strings.ToLower(p.SHA256) {
		return nil
	}
	if rel, err := filepath.Rel(c.Dir, p.Path); err == nil && filepath.IsLocal(rel) {
		if err := os.Remove(p.Path); err != nil {
			c.log().Warn("cannot remove damaged archive", "file", p.Path, "err", err)
		}
		return fmt.Errorf("unpack %s: %s: %w (removed; fetch it again)", p.Name, p.Path, ErrChecksum)
	}
	return fmt.Errorf("unpack %s: %s: %w", p.Name, p.Path, ErrChecksum)
}

// stored returns the checked tree of entry dir, marking it used now (the
// garbage collector removes the least recently used entries first). A
// missing entry is nil, nil; an error means the entry is damaged.
func (c Cache) stored(dir string) (*Tree, error) {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	index := filepath.Join(dir, "index")
	tr, err := loadTree(filepath.Join(dir, "tree"), index)
	if err != nil {
		return nil, err
	}
	changed, err := tr.check()
	if err != nil {
		return nil, err
	}
	if changed { // same contents, new stat (a copied cache, say): check by stat next time
		if err := tr.save(index); err != nil {
			c.log().Debug("cannot update stored list", "file", index, "err", err)
		}
	}
	now := time.Now()
	_ = os.Chtimes(dir, now, now) // best effort: only the order of garbage collection depends on it
	return tr, nil
}

// unpackSealed unpacks archive into tmp/tree and stores its list in
// tmp/index.
func unpackSealed(ctx context.Context, archive, tmp string, lim Limits) error {
	dir := filepath.Join(tmp, "tree")
	if err := Unpack(ctx, archive, dir, lim); err != nil {
		return err
	}
	tr, err := seal(dir)
	if err != nil {
		return fmt.Errorf("unpack %s: %w", archive, err)
	}
	if err := tr.save(filepath.Join(tmp, "index")); err != nil {
		return fmt.Errorf("unpack %s: %w", archive, err)
	}
	return nil
}

// Trees runs Tree for pkgs with at most parallel unpacks at a time
// (GOMAXPROCS when parallel < 1) and returns the trees in the order of
// pkgs. The first failure cancels the unpacks still running, except
// ErrChecksum: every damaged archive is found (and removed) in one pass, so
// that one fetch replaces them all.
func (c Cache) Trees(ctx context.Context, pkgs []backends.Package, parallel int) ([]*Tree, error) {
	if parallel < 1 {
		parallel = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	trees := make([]*Tree, len(pkgs))
	errs := make([]error, len(pkgs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(parallel, len(pkgs)) {
		wg.Go(func() {
			for i := range next {
				trees[i], errs[i] = c.Tree(ctx, pkgs[i])
				if errs[i] != nil && !errors.Is(errs[i], ErrChecksum) {
					cancel(errs[i]) // only the first cause is kept
				}
			}
		})
	}
feed:
	for i := range pkgs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return trees, nil
}
