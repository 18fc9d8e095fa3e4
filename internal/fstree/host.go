package fstree

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// EntryFromHost describes the host file src (already Lstat'ed as info) as an
// entry at dest. Regular files reference src for their contents.
func EntryFromHost(src, dest string, info fs.FileInfo) (Entry, error) {
	e := Entry{Path: dest, Mode: info.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)}
	switch m := info.Mode(); {
	case m.IsDir():
		e.Kind = Dir
	case m.IsRegular():
		e.Kind, e.Source, e.Size = File, src, info.Size()
	case m&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return Entry{}, fmt.Errorf("include %s: %w", src, err)
		}
		e.Kind, e.Target = Symlink, target
	case m&fs.ModeDevice != 0:
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return Entry{}, fmt.Errorf("include %s: no device numbers", src)
		}
		e.Kind = BlockDev
		if m&fs.ModeCharDevice != 0 {
			e.Kind = CharDev
		}
		e.Major, e.Minor = uint32((st.Rdev>>8)&0xfff|(st.Rdev>>32)&^0xfff), uint32(st.Rdev&0xff|(st.Rdev>>12)&^0xff)
	default:
		return Entry{}, fmt.Errorf("include %s: unsupported file type %s", src, m.Type())
	}
	return e, nil
}

// fsWalk walks root in lexical order without following symlinks.
func fsWalk(root string, fn func(string, fs.FileInfo) error) error {
	return filepath.Walk(root, func(p string, info fs.FileInfo, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", p, err)
		}
		return fn(p, info)
	})
}
