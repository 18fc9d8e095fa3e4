package cpio

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

// These tests check interoperability with GNU cpio (Debian package "cpio")
// in both directions. They create device nodes, so they run as root.

func gnuCpio(t *testing.T) string {
	t.Helper()
	p := testenv.NeedTool(t, "cpio", "cpio")
	testenv.NeedRoot(t, "creating device nodes")
	return p
}

func run(t *testing.T, dir string, stdin io.Reader, name string, args ...string) (stdout, stderr []byte) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdin = stdin
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, e.Bytes())
	}
	return o.Bytes(), e.Bytes()
}

// makeHostTree creates files of every kind cpio can hold under dir.
func makeHostTree(t *testing.T, dir string) {
	t.Helper()
	long := filepath.Join(strings.Repeat("a-rather-long-directory-name/", 8), strings.Repeat("n", 200))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "dev"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, filepath.Dir(long)), 0o750))
	must(os.WriteFile(filepath.Join(dir, long), []byte("long name\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "init"), bytes.Repeat([]byte("#!/bin/sh\n"), 1000), 0o755))
	must(os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600))
	must(os.WriteFile(filepath.Join(dir, "hl-a"), []byte("shared inode\n"), 0o644))
	must(os.Link(filepath.Join(dir, "hl-a"), filepath.Join(dir, "hl-b")))
	must(os.Link(filepath.Join(dir, "hl-a"), filepath.Join(dir, "dev/hl-c")))
	must(os.Symlink("init", filepath.Join(dir, "sbin-init")))
	must(os.Symlink("/nonexistent/"+strings.Repeat("t", 300), filepath.Join(dir, "dangling")))
	must(syscall.Mknod(filepath.Join(dir, "dev/console"), syscall.S_IFCHR|0o600, int(mkdev(5, 1))))
	must(syscall.Mknod(filepath.Join(dir, "dev/loop9"), syscall.S_IFBLK|0o660, int(mkdev(7, 9))))
	must(syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o640))
	must(os.Chmod(filepath.Join(dir, "init"), 0o4755))
}

func mkdev(major, minor uint32) uint64 {
	return uint64(minor&0xff) | uint64(major&0xfff)<<8 | uint64(minor&^0xff)<<12 | uint64(major&^0xfff)<<32
}

// TestReadGNU reads archives made by "cpio -o" and compares every entry with
// the file it was made from.
func TestReadGNU(t *testing.T) {
	cpioBin := gnuCpio(t)
	for _, format := range []string{"newc", "crc"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			makeHostTree(t, dir)
			list, _ := run(t, dir, nil, "find", ".", "-mindepth", "1")
			arch, _ := run(t, dir, bytes.NewReader(list), cpioBin, "-o", "-H", format, "--quiet")

			r := NewReader(bytes.NewReader(arch))
			seen := map[string]bool{}
			links := map[uint32][]string{} // ino → names
			withData := map[uint32]int{}
			for {
				h, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Next() = %v", err)
				}
				data, err := io.ReadAll(r)
				if err != nil {
					t.Fatalf("Read(%q) = %v", h.Name, err)
				}
				name := strings.TrimPrefix(h.Name, "./")
				seen[name] = true
				var st syscall.Stat_t
				if err := syscall.Lstat(filepath.Join(dir, name), &st); err != nil {
					t.Fatalf("entry %q has no host file: %v", h.Name, err)
				}
				if h.Mode != st.Mode {
					t.Errorf("%s: Mode = %#o, want %#o", name, h.Mode, st.Mode)
				}
				if h.Mtime != st.Mtim.Sec || h.Uid != st.Uid || h.Gid != st.Gid {
					t.Errorf("%s: mtime/uid/gid = %d/%d/%d, want %d/%d/%d", name, h.Mtime, h.Uid, h.Gid, st.Mtim.Sec, st.Uid, st.Gid)
				}
				if uint64(h.Nlink) != st.Nlink {
					t.Errorf("%s: Nlink = %d, want %d", name, h.Nlink, st.Nlink)
				}
				switch h.Type() {
				case TypeReg:
					want, err := os.ReadFile(filepath.Join(dir, name))
					if err != nil {
						t.Fatal(err)
					}
					if h.Nlink > 1 {
						links[h.Ino] = append(links[h.Ino], name)
						if len(data) > 0 {
							withData[h.Ino]++
						} else {
							break
						}
					}
					if !bytes.Equal(data, want) || h.Size != int64(len(want)) {
						t.Errorf("%s: data %d bytes (Size %d), want %d bytes", name, len(data), h.Size, len(want))
					}
				case TypeSymlink:
					want, _ := os.Readlink(filepath.Join(dir, name))
					if h.Linkname != want || len(data) != 0 {
						t.Errorf("%s: Linkname = %q, data %q; want %q and no data", name, h.Linkname, data, want)
					}
				case TypeChar, TypeBlock:
					if mkdev(h.RdevMajor, h.RdevMinor) != st.Rdev {
						t.Errorf("%s: rdev = %d:%d, want %#x", name, h.RdevMajor, h.RdevMinor, st.Rdev)
					}
				}
			}
			for _, want := range strings.Fields(string(list)) {
				if !seen[strings.TrimPrefix(want, "./")] {
					t.Errorf("entry %s missing from the archive", want)
				}
			}
			if len(links) != 1 {
				t.Fatalf("hard link groups = %v, want one group of 3", links)
			}
			for ino, names := range links {
				if len(names) != 3 || withData[ino] != 1 {
					t.Errorf("hard link group %v: %d carry data, want 3 names, 1 with data", names, withData[ino])
				}
			}
			if r.Offset() > int64(len(arch)) || len(arch)-int(r.Offset()) >= 512 {
				t.Errorf("Offset() = %d for a %d-byte archive (GNU pads to 512)", r.Offset(), len(arch))
			}
			if rest := arch[r.Offset():]; len(bytes.Trim(rest, "\x00")) != 0 {
				t.Errorf("bytes after the trailer are not padding: %q", rest)
			}
		})
	}
}

// TestReadGNUChecksumError corrupts a data byte of a GNU crc archive.
func TestReadGNUChecksumError(t *testing.T) {
	cpioBin := testenv.NeedTool(t, "cpio", "cpio")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("some data"), 0o644); err != nil {
		t.Fatal(err)
	}
	arch, _ := run(t, dir, strings.NewReader("f\n"), cpioBin, "-o", "-H", "crc", "--quiet")
	i := bytes.Index(arch, []byte("some data"))
	arch[i] ^= 1
	r := NewReader(bytes.NewReader(arch))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, ErrChecksum) {
		t.Errorf("ReadAll of corrupted crc entry = %v, want ErrChecksum", err)
	}
}

// TestGNUReadsOurs writes an archive with every entry kind and checks that
// "cpio -itv" lists it and "cpio -idm" recreates it.
func TestGNUReadsOurs(t *testing.T) {
	cpioBin := gnuCpio(t)
	long := strings.Repeat("long-directory-name/", 12) + strings.Repeat("f", 200)
	entries := []entry{
		{h: Header{Name: "dev", Mode: TypeDir | 0o755, Nlink: 2, Ino: 1, Mtime: 1600000000}},
		{h: Header{Name: "dev/console", Mode: TypeChar | 0o600, Nlink: 1, Ino: 2, RdevMajor: 5, RdevMinor: 1, Mtime: 1600000000}},
		{h: Header{Name: "dev/big", Mode: TypeBlock | 0o660, Nlink: 1, Ino: 3, RdevMajor: 259, RdevMinor: 300, Mtime: 1600000000}},
		{h: Header{Name: "dev/fifo", Mode: TypeFifo | 0o600, Nlink: 1, Ino: 4, Mtime: 1600000000}},
		{h: Header{Name: "empty", Mode: TypeReg | 0o640, Nlink: 1, Ino: 5, Mtime: 1600000000}},
		{h: Header{Name: "hl-a", Mode: TypeReg | 0o644, Nlink: 3, Ino: 6, Mtime: 1600000000}},
		{h: Header{Name: "hl-b", Mode: TypeReg | 0o644, Nlink: 3, Ino: 6, Mtime: 1600000000}},
		{h: Header{Name: "hl-c", Mode: TypeReg | 0o644, Nlink: 3, Ino: 6, Mtime: 1600000000, Size: 7}, data: "linked\n"},
		{h: Header{Name: "init", Mode: TypeReg | ModeSetuid | 0o755, Nlink: 1, Ino: 7, Mtime: 1600000001, Size: 10}, data: "#!/bin/sh\n"},
		{h: Header{Name: "lib", Mode: TypeSymlink | 0o777, Nlink: 1, Ino: 8, Mtime: 1600000000, Linkname: "usr/lib"}},
		{h: Header{Name: strings.Split(long, "/")[0], Mode: TypeDir | 0o755, Nlink: 2, Ino: 9}},
	}
	parts := strings.Split(long, "/")
	for i := 2; i < len(parts); i++ {
		entries = append(entries, entry{h: Header{Name: strings.Join(parts[:i], "/"), Mode: TypeDir | 0o755, Nlink: 2, Ino: uint32(8 + i)}})
	}
	entries = append(entries, entry{h: Header{Name: long, Mode: TypeReg | 0o600, Nlink: 1, Ino: 100, Size: 5, Mtime: 1600000000}, data: "long\n"})

	for _, f := range []Format{FormatNewc, FormatCRC} {
		t.Run(f.String(), func(t *testing.T) {
			arch := writeArchive(t, f, entries)

			list, _ := run(t, "", bytes.NewReader(arch), cpioBin, "-it", "--quiet")
			var got, want []string
			for _, e := range entries {
				want = append(want, e.h.Name)
			}
			got = strings.Split(strings.TrimSuffix(string(list), "\n"), "\n")
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("cpio -it lists\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			verbose, _ := run(t, "", bytes.NewReader(arch), cpioBin, "-itv", "--quiet")
			for _, frag := range []string{"crw-------", "5,   1", "259, 300", "lib -> usr/lib", "-rwsr-xr-x"} {
				if !bytes.Contains(verbose, []byte(frag)) {
					t.Errorf("cpio -itv output lacks %q:\n%s", frag, verbose)
				}
			}

			dir := t.TempDir()
			_, stderr := run(t, dir, bytes.NewReader(arch), cpioBin, "-idm", "--quiet")
			if len(stderr) != 0 {
				t.Errorf("cpio -idm complained: %s", stderr)
			}
			checkExtracted(t, dir, entries)
		})
	}
}

func checkExtracted(t *testing.T, dir string, entries []entry) {
	t.Helper()
	inodes := map[uint32][]uint64{}
	for _, e := range entries {
		p := filepath.Join(dir, e.h.Name)
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Errorf("%s not extracted: %v", e.h.Name, err)
			continue
		}
		if st.Mode != e.h.Mode {
			t.Errorf("%s: mode %#o, want %#o", e.h.Name, st.Mode, e.h.Mode)
		}
		switch e.h.Type() {
		case TypeReg:
			if e.h.Mtime != 0 && st.Mtim.Sec != e.h.Mtime {
				t.Errorf("%s: mtime %d, want %d", e.h.Name, st.Mtim.Sec, e.h.Mtime)
			}
			if e.h.Nlink > 1 {
				inodes[e.h.Ino] = append(inodes[e.h.Ino], st.Ino)
				e.data = "linked\n"
			}
			if b, _ := os.ReadFile(p); string(b) != e.data {
				t.Errorf("%s: contents %q, want %q", e.h.Name, b, e.data)
			}
		case TypeSymlink:
			if l, _ := os.Readlink(p); l != e.h.Linkname {
				t.Errorf("%s: target %q, want %q", e.h.Name, l, e.h.Linkname)
			}
		case TypeChar, TypeBlock:
			if st.Rdev != mkdev(e.h.RdevMajor, e.h.RdevMinor) {
				t.Errorf("%s: rdev %#x, want %d:%d", e.h.Name, st.Rdev, e.h.RdevMajor, e.h.RdevMinor)
			}
		}
	}
	for ino, hostInodes := range inodes {
		sort.Slice(hostInodes, func(i, j int) bool { return hostInodes[i] < hostInodes[j] })
		if len(hostInodes) != 3 || hostInodes[0] != hostInodes[2] {
			t.Errorf("hard link group %d extracted as inodes %v, want 3 names of one inode", ino, hostInodes)
		}
	}
}
