// Package atomicfile writes files so that readers see either the old
// contents or the complete new ones: a File is written to a temporary file
// ".NAME.tmp-*" in the target's directory, which Commit syncs and renames
// over the target before syncing the directory. Until then, and whenever a
// step fails, the target is untouched; Cleanup removes the temporary file.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

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
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
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

// Commit finishes every file, then renames them in the order they were
// created and syncs their directories. On error the files not yet renamed
// are removed; a rename failure leaves the targets renamed before it in
// place.
func (s *Set) Commit() error {
	defer s.Cleanup()
	for _, f := range s.files {
		if err := f.finish(); err != nil {
			return err
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
