package unpack

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/pkginitrd/pkginitrd/backends"
)

// staleTemp is how old an abandoned temporary unpack directory (left by a
// killed process) must be before Cached removes it.
const staleTemp = time.Hour

// Cached unpacks p.Path once into cacheDir/unpacked/<archive name without
// extension> and returns that directory. The tree is built in a temporary
// directory next to it and renamed into place, so an interrupted unpack
// never leaves a directory that a later run trusts; when two processes race,
// the loser discards its copy. lim bounds the unpacked package (see Unpack).
func Cached(ctx context.Context, cacheDir string, p backends.Package, lim Limits) (string, error) {
	if p.Path == "" {
		return "", fmt.Errorf("unpack %s: package has no archive path", p.Name)
	}
	base := archiveBase(p.Path)
	parent := filepath.Join(cacheDir, "unpacked")
	dir := filepath.Join(parent, base)
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return dir, nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("unpack %s: %w", p.Name, err)
	}
	removeStale(parent, base)
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return "", fmt.Errorf("unpack %s: %w", p.Name, err)
	}
	if err := Unpack(ctx, p.Path, tmp, lim); err != nil {
		removeTree(tmp)
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		removeTree(tmp)
		return "", fmt.Errorf("unpack %s: %w", p.Name, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		removeTree(tmp)
		// Lost a race: another process renamed its complete copy first.
		if fi, serr := os.Stat(dir); serr == nil && fi.IsDir() {
			return dir, nil
		}
		return "", fmt.Errorf("unpack %s: %w", p.Name, err)
	}
	return dir, nil
}

// CachedAll runs Cached for pkgs with at most parallel unpacks at a time
// (GOMAXPROCS when parallel < 1) and returns the roots in the order of pkgs.
// The first failure cancels the unpacks still running.
func CachedAll(ctx context.Context, cacheDir string, pkgs []backends.Package, lim Limits, parallel int) ([]string, error) {
	if parallel < 1 {
		parallel = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	roots := make([]string, len(pkgs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(parallel, len(pkgs)) {
		wg.Go(func() {
			for i := range next {
				root, err := Cached(ctx, cacheDir, pkgs[i], lim)
				if err != nil {
					cancel(err) // only the first cause is kept
					continue
				}
				roots[i] = root
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
	return roots, nil
}

// archiveBase is the archive's file name without its package extension.
func archiveBase(p string) string {
	base := filepath.Base(p)
	if i := strings.Index(base, ".pkg.tar"); i > 0 {
		return base[:i]
	}
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// removeStale deletes temporary directories for base that a killed process
// left behind.
func removeStale(parent, base string) {
	m, _ := filepath.Glob(filepath.Join(parent, "."+base+".tmp-*"))
	for _, d := range m {
		if fi, err := os.Lstat(d); err == nil && time.Since(fi.ModTime()) > staleTemp {
			removeTree(d)
		}
	}
}

// removeTree removes dir even when the archive made some directories
// read-only, which stops os.RemoveAll for a non-root user.
func removeTree(dir string) {
	if os.RemoveAll(dir) == nil {
		return
	}
	// Best effort: make read-only directories writable, then try again.
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	os.RemoveAll(dir)
}
