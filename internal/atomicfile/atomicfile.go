// Package atomicfile writes files so that readers see either the old
// contents or the complete new ones: a File is written to a temporary file
// ".NAME.tmp-*" in the target's directory, which Commit syncs and renames
// over the target before syncing the directory. Until then, and whenever a
// step fails, the target is untouched; Cleanup removes the temporary file.
// LockDir keeps concurrent runs from removing each other's temporaries and
// removes those that killed runs left behind.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// tempInfix separates the target's name from the random digits in the
// name of a temporary file: ".NAME.tmp-123456".
const tempInfix = ".tmp-"

// File is a pending output file. Write to it, then Commit; defer Cleanup
// to remove the temporary file on every path that does not commit.
type File struct {
	path string
	mode fs.FileMode
	tmp  *os.File
	done bool // committed or cleaned up
}

// Create starts a pending output file for path, to be given mode on Commit.
func Create(path string, mode fs.FileMode) (*File, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+tempInfix+"*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return &File{path: path, mode: mode, tmp: tmp}, nil
}

// Write writes to the temporary file.
func (f *File) Write(p []byte) (int, error) { return f.tmp.Write(p) }

// ReadFrom copies r to the temporary file, letting io.Copy use the
// kernel's file-to-file copy.
func (f *File) ReadFrom(r io.Reader) (int64, error) { return f.tmp.ReadFrom(r) }

// Commit gives the temporary file its mode, syncs and closes it, renames it
// over the target and syncs the directory. On error before the rename the
// temporary file is removed and the target is untouched.
func (f *File) Commit() error {
	if err := f.finish(); err != nil {
		return err
	}
	if err := f.rename(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(f.path))
}

// finish writes the temporary file to disk and closes it.
func (f *File) finish() error {
	if f.done {
		return fmt.Errorf("commit %s: %w", f.path, os.ErrClosed)
	}
	err := f.tmp.Chmod(f.mode)
	if err == nil {
		err = f.tmp.Sync()
	}
	if cerr := f.tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		f.Cleanup()
		return fmt.Errorf("commit %s: %w", f.path, err)
	}
	return nil
}

// rename puts the finished temporary file in place of the target.
func (f *File) rename() error {
	if err := os.Rename(f.tmp.Name(), f.path); err != nil {
		f.Cleanup()
		return fmt.Errorf("commit %s: %w", f.path, err)
	}
	f.done = true
	return nil
}

// Cleanup removes the temporary file unless it was committed. It may be
// called any number of times, also after Commit.
func (f *File) Cleanup() {
	if f.done {
		return
	}
	f.done = true
	f.tmp.Close()
	os.Remove(f.tmp.Name())
}

// Set is a group of pending files that are committed together: each is
// synced before the first is renamed, so an error while writing or syncing
// any of them leaves every target untouched.
type Set struct {
	files []*File
}

// Create starts a pending output file for path in s.
func (s *Set) Create(path string, mode fs.FileMode) (*File, error) {
	f, err := Create(path, mode)
	if err != nil {
		return nil, err
	}
	s.files = append(s.files, f)
	return f, nil
}

// Commit finishes every file and checks every target (CheckTarget), then
// renames them in the order they were created and syncs their directories.
// On error the files not yet renamed are removed; a rename failure, which
// the checks make unlikely, leaves the targets renamed before it in place.
func (s *Set) Commit() error {
	defer s.Cleanup()
	for _, f := range s.files {
		if err := f.finish(); err != nil {
			return err
		}
	}
	for _, f := range s.files {
		if err := CheckTarget(f.path); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	var dirs []string
	for _, f := range s.files {
		if err := f.rename(); err != nil {
			return err
		}
		if dir := filepath.Dir(f.path); !slices.Contains(dirs, dir) {
			dirs = append(dirs, dir)
		}
	}
	var errs []error
	for _, dir := range dirs {
		errs = append(errs, syncDir(dir))
	}
	return errors.Join(errs...)
}

// Cleanup removes the temporary files not committed. It may be called any
// number of times, also after Commit.
func (s *Set) Cleanup() {
	for _, f := range s.files {
		f.Cleanup()
	}
}

// CheckTarget reports an error naming path when a file cannot be committed
// there: path is a directory, or its parent directory does not exist.
// Callers check their outputs before slow work to fail at once.
func CheckTarget(path string) error {
	if fi, err := os.Lstat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("output %s: is a directory", path)
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("output %s: directory %s does not exist", path, dir)
	case err != nil:
		return fmt.Errorf("output %s: %w", path, err)
	case !fi.IsDir():
		return fmt.Errorf("output %s: %s is not a directory", path, dir)
	}
	return nil
}

// DirLock is a shared lock on a directory that pending files are written
// to (flock(2) on the directory itself, so nothing is left behind). Every
// run writing there holds it until its files are committed or removed.
type DirLock struct{ d *os.File }

// LockDir takes the lock on dir. If no other run holds it, so that no other
// run is writing there, it first removes the temporary files ".NAME.tmp-*"
// left by runs killed before they could clean up, for each NAME that stale
// accepts, and returns their paths.
func LockDir(dir string, stale func(name string) bool) (*DirLock, []string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	fd := int(d.Fd())
	var removed []string
	if syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		removed, err = removeStale(dir, stale)
	}
	// Take the lock shared (converting the exclusive one): other runs
	// may write to dir at the same time, only not clean it.
	if lerr := syscall.Flock(fd, syscall.LOCK_SH); lerr != nil {
		d.Close()
		return nil, removed, fmt.Errorf("lock %s: %w", dir, lerr)
	}
	return &DirLock{d: d}, removed, err
}

// Unlock releases the lock.
func (l *DirLock) Unlock() { l.d.Close() }

// removeStale removes the temporary files in dir whose target stale accepts.
func removeStale(dir string, stale func(name string) bool) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("clean %s: %w", dir, err)
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		target, ok := tempTarget(e.Name())
		if !ok || !stale(target) || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}

// tempTarget returns NAME for the name of a temporary file ".NAME.tmp-DIGITS"
// that Create makes.
func tempTarget(name string) (string, bool) {
	i := strings.LastIndex(name, tempInfix)
	if i < 2 || name[0] != '.' {
		return "", false
	}
	digits := name[i+len(tempInfix):]
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return "", false
	}
	return name[1:i], true
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// Write copies r to path with the given mode, atomically.
func Write(path string, r io.Reader, mode fs.FileMode) error {
	f, err := Create(path, mode)
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := io.Copy(f, r); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// CopyFile copies the file src to dst atomically with the given mode.
func CopyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	return Write(dst, in, mode)
}
