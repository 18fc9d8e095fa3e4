package image

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pkginitrd/pkginitrd/image/cpio"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

func TestWriteArchive(t *testing.T) {
	src := hostFiles(t)
	tree := sampleTree(t, src)
	var buf bytes.Buffer
	const mtime = 1234567890
	stats, err := WriteArchive(context.Background(), &buf, tree, ArchiveOptions{Mtime: mtime})
	if err != nil {
		t.Fatalf("WriteArchive() = %v", err)
	}
	if stats.Entries != tree.Len() || stats.Bytes != int64(buf.Len()) {
		t.Errorf("WriteArchive() stats = %+v, want %d entries and %d bytes", stats, tree.Len(), buf.Len())
	}
	entries := readEntries(t, buf.Bytes())
	if got, want := strings.Join(headerNamesOf(entries), " "), strings.Join(treePaths(tree), " "); got != want {
		t.Fatalf("archive order:\n%s\nwant\n%s", got, want)
	}
	byName := map[string]readEntry{}
	lastIno := uint32(0)
	for _, e := range entries {
		byName[e.h.Name] = e
		h := e.h
		if h.Uid != 0 || h.Gid != 0 || h.Mtime != mtime {
			t.Errorf("%s: uid/gid/mtime = %d/%d/%d, want 0/0/%d", h.Name, h.Uid, h.Gid, h.Mtime, mtime)
		}
		if h.Ino > lastIno+1 || h.Ino == 0 {
			t.Errorf("%s: ino %d after %d, want numbering in path order", h.Name, h.Ino, lastIno)
		}
		lastIno = max(lastIno, h.Ino)
		if h.Type() != cpio.TypeDir && h.Type() != cpio.TypeReg && h.Nlink != 1 {
			t.Errorf("%s: nlink %d, want 1", h.Name, h.Nlink)
		}
	}
	want := []struct {
		name  string
		mode  uint32
		nlink uint32
		size  int64
		data  string
	}{
		{"bin", cpio.TypeSymlink | 0o777, 1, 0, ""},
		{"dev/console", cpio.TypeChar | 0o600, 1, 0, ""},
		{"dev/vda", cpio.TypeBlock | 0o660, 1, 0, ""},
		{"tmp", cpio.TypeDir | cpio.ModeSticky | 0o777, 2, 0, ""},
		{"usr", cpio.TypeDir | 0o755, 5, 0, ""}, // bin, lib, share
		{"usr/bin/busybox", cpio.TypeReg | cpio.ModeSetuid | 0o755, 1, 300 << 10, ""},
		{"etc/empty", cpio.TypeReg | 0o600, 1, 0, ""},
		{"etc/inline", cpio.TypeReg | 0o640, 1, 12, "inline data\n"},
		// One inode, data with the last name in path order.
		{"usr/lib/0", cpio.TypeReg | 0o755, 3, 0, ""},
		{"usr/lib/a", cpio.TypeReg | 0o755, 3, 0, ""},
		{"usr/lib/b", cpio.TypeReg | 0o755, 3, 23, "one inode, three names\n"},
	}
	for _, w := range want {
		e, ok := byName[w.name]
		if !ok {
			t.Errorf("%s missing", w.name)
			continue
		}
		if e.h.Mode != w.mode || e.h.Nlink != w.nlink || e.h.Size != w.size || (w.data != "" && string(e.data) != w.data) {
			t.Errorf("%s: mode %#o nlink %d size %d data %.30q; want %#o %d %d %.30q", w.name, e.h.Mode, e.h.Nlink, e.h.Size, e.data, w.mode, w.nlink, w.size, w.data)
		}
	}
	if a, b, z := byName["usr/lib/a"].h.Ino, byName["usr/lib/b"].h.Ino, byName["usr/lib/0"].h.Ino; a != b || a != z {
		t.Errorf("hard link inodes = %d, %d, %d; want one", z, a, b)
	}
	if c := byName["dev/console"].h; c.RdevMajor != 5 || c.RdevMinor != 1 {
		t.Errorf("dev/console rdev = %d:%d, want 5:1", c.RdevMajor, c.RdevMinor)
	}
	if l := byName["bin"].h.Linkname; l != "usr/bin" {
		t.Errorf("bin -> %q, want usr/bin", l)
	}
	busybox, _ := os.ReadFile(filepath.Join(src, "busybox"))
	if !bytes.Equal(byName["usr/bin/busybox"].data, busybox) {
		t.Error("usr/bin/busybox data differs from its source")
	}
}

func headerNamesOf(es []readEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.h.Name)
	}
	return out
}

// TestWriteArchiveGNUExtract extracts our archive with GNU cpio (as root:
// it creates device nodes) and compares the result with the tree.
func TestWriteArchiveGNUExtract(t *testing.T) {
	testenv.NeedRoot(t, "creating device nodes")
	src := hostFiles(t)
	tree := sampleTree(t, src)
	var buf bytes.Buffer
	if _, err := WriteArchive(context.Background(), &buf, tree, ArchiveOptions{Mtime: 1600000000}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(cpioList(t, buf.Bytes()), "\n"), strings.Join(treePaths(tree), "\n"); got != want {
		t.Errorf("cpio -it lists\n%s\nwant\n%s", got, want)
	}
	dir := t.TempDir()
	run(t, dir, buf.Bytes(), "cpio", "-idm", "--quiet")
	checkExtractedTree(t, dir, tree, true)
}

// checkExtractedTree compares an extracted directory with tree.
func checkExtractedTree(t *testing.T, dir string, tree *fstree.Tree, devices bool) {
	t.Helper()
	var linkIno uint64
	for _, e := range tree.Sorted() {
		p := filepath.Join(dir, e.Path)
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			if !devices && (e.Kind == fstree.CharDev || e.Kind == fstree.BlockDev) {
				continue
			}
			t.Errorf("%s not extracted: %v", e.Path, err)
			continue
		}
		switch e.Kind {
		case fstree.Dir:
			if st.Mode != syscall.S_IFDIR|cpio.ModeFromFileMode(e.Mode)&^cpio.TypeMask {
				t.Errorf("%s: mode %#o, want dir %v", e.Path, st.Mode, e.Mode)
			}
		case fstree.File, fstree.Hardlink:
			f := e
			if e.Kind == fstree.Hardlink {
				f, _ = resolveHardlink(tree, e)
			}
			want, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			var wb bytes.Buffer
			wb.ReadFrom(want)
			want.Close()
			got, _ := os.ReadFile(p)
			if !bytes.Equal(got, wb.Bytes()) {
				t.Errorf("%s: %d bytes differ from the %d bytes of its source", e.Path, len(got), wb.Len())
			}
			if st.Mode != syscall.S_IFREG|cpio.ModeFromFileMode(f.Mode)&^cpio.TypeMask {
				t.Errorf("%s: mode %#o, want %v", e.Path, st.Mode, f.Mode)
			}
			if strings.HasPrefix(e.Path, "usr/lib/") {
				if linkIno == 0 {
					linkIno = st.Ino
				}
				if st.Ino != linkIno || st.Nlink != 3 {
					t.Errorf("%s: inode %d nlink %d, want the hard-link group's inode %d, nlink 3", e.Path, st.Ino, st.Nlink, linkIno)
				}
			}
		case fstree.Symlink:
			if l, _ := os.Readlink(p); l != e.Target {
				t.Errorf("%s -> %q, want %q", e.Path, l, e.Target)
			}
		case fstree.CharDev, fstree.BlockDev:
			want := uint64(e.Minor&0xff) | uint64(e.Major&0xfff)<<8
			if st.Rdev != want {
				t.Errorf("%s: rdev %#x, want %d:%d", e.Path, st.Rdev, e.Major, e.Minor)
			}
		}
	}
}

func TestWriteArchiveSourceChanged(t *testing.T) {
	src := hostFiles(t)
	text := filepath.Join(src, "text")
	st, err := os.Stat(text)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		entry fstree.Entry
		want  string
	}{
		{"shrank", fstree.Entry{Source: text, Size: st.Size() + 1}, "shrank"},
		{"grew", fstree.Entry{Source: text, Size: st.Size() - 1}, "grew"},
		{"grew from empty", fstree.Entry{Source: text, Size: 0}, "grew"},
		{"vanished", fstree.Entry{Source: filepath.Join(src, "gone"), Size: 3}, "no such file"},
	}
	for _, tt := range tests {
		tree := fstree.New()
		e := tt.entry
		e.Path, e.Kind, e.Mode, e.Origin = "usr/share/doc", fstree.File, 0o644, "somepkg"
		if err := tree.Add(e); err != nil {
			t.Fatal(err)
		}
		_, err := WriteArchive(context.Background(), &bytes.Buffer{}, tree, ArchiveOptions{})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "usr/share/doc") || !strings.Contains(err.Error(), e.Source) {
			t.Errorf("%s: WriteArchive() = %v, want an error naming %q, usr/share/doc and %s", tt.name, err, tt.want, e.Source)
		}
	}
}

func TestWriteArchiveRejects(t *testing.T) {
	tests := []struct {
		name    string
		entries []fstree.Entry
		want    string
	}{
		{"dangling hard link", []fstree.Entry{{Path: "a", Kind: fstree.Hardlink, Target: "b", Origin: "pkg"}}, `target "b" is not in the image`},
		{"hard link to dir", []fstree.Entry{{Path: "d", Kind: fstree.Dir}, {Path: "a", Kind: fstree.Hardlink, Target: "d"}}, "not a regular file"},
		{"hard link cycle", []fstree.Entry{{Path: "a", Kind: fstree.Hardlink, Target: "b"}, {Path: "b", Kind: fstree.Hardlink, Target: "a"}}, "cycle"},
		{"name too long", []fstree.Entry{{Path: strings.Repeat("x/", 2100), Kind: fstree.Dir}}, "PATH_MAX"},
		{"empty symlink", []fstree.Entry{{Path: "l", Kind: fstree.Symlink}}, "symlink target"},
		{"file too big", []fstree.Entry{{Path: "big", Kind: fstree.File, Data: []byte{}, Size: 1 << 32}}, "does not fit"},
	}
	for _, tt := range tests {
		tree := fstree.New()
		for _, e := range tt.entries {
			if err := tree.Add(e); err != nil {
				t.Fatal(err)
			}
		}
		_, err := WriteArchive(context.Background(), &bytes.Buffer{}, tree, ArchiveOptions{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: WriteArchive() = %v, want error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestWriteArchiveCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tree := sampleTree(t, hostFiles(t))
	if _, err := WriteArchive(ctx, &bytes.Buffer{}, tree, ArchiveOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteArchive(cancelled) = %v, want context.Canceled", err)
	}
}

func TestWriteArchiveMtimeRange(t *testing.T) {
	tree := fstree.New()
	tree.Add(fstree.Entry{Path: "d", Kind: fstree.Dir, Mode: 0o755})
	for _, mtime := range []int64{-1, 1 << 32} {
		if _, err := WriteArchive(context.Background(), &bytes.Buffer{}, tree, ArchiveOptions{Mtime: mtime}); !errors.Is(err, cpio.ErrFieldTooLong) {
			t.Errorf("WriteArchive(Mtime %d) = %v, want ErrFieldTooLong", mtime, err)
		}
	}
}
