package unpack

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

// describe lists every path below root (not root itself) with what a
// package unpacker must reproduce: type, mode bits, symlink target, content
// hash and, for regular files, the set of paths sharing the inode.
func describe(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	links := map[uint64][]string{}
	err := filepath.Walk(root, func(p string, info fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel := p[len(root)+1:]
		m := info.Mode()
		desc := m.String() // type, permissions, setuid/setgid/sticky
		switch {
		case m&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		case m.IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			desc += " " + hex.EncodeToString(sum[:8])
			if st := info.Sys().(*syscall.Stat_t); st.Nlink > 1 {
				links[st.Ino] = append(links[st.Ino], rel)
			}
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	for _, group := range links {
		sort.Strings(group)
		for _, p := range group {
			out[p] += " links=" + strings.Join(group, ",")
		}
	}
	return out
}

// compareTrees fails the test for every difference between got and want.
func compareTrees(t *testing.T, label string, got, want map[string]string) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		if g, ok := got[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("missing %s (%s)", p, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s: got %s, want %s", p, g, w))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra %s (%s)", p, g))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 20 {
		diffs = append(diffs[:20], fmt.Sprintf("... %d more", len(diffs)-20))
	}
	for _, d := range diffs {
		t.Errorf("%s: %s", label, d)
	}
}

// tempDir is t.TempDir that can also be removed by a non-root user when an
// archive made directories in it read-only.
func tempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() { // runs before TempDir's own cleanup
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	return dir
}

// dpkgExtract unpacks deb with the system's dpkg-deb -x.
func dpkgExtract(t testing.TB, deb string) string {
	t.Helper()
	dir := tempDir(t)
	run(t, "", "dpkg-deb", "-x", deb, dir)
	return dir
}

// run runs a command and fails the test with its output on error; a
// missing tool skips the test (see testenv.NeedTool).
func run(t testing.TB, dir, name string, args ...string) []byte {
	t.Helper()
	pkg := map[string]string{"ar": "binutils", "dpkg-deb": "dpkg", "xz": "xz-utils", "bsdtar": "libarchive-tools"}[name]
	if pkg == "" {
		pkg = name // bzip2
	}
	cmd := exec.Command(testenv.NeedTool(t, name, pkg), args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// arMember is one member of an ar archive built by writeAr.
type arMember struct {
	name string
	data []byte
}

// writeAr writes a common-format ar archive (the .deb container).
func writeAr(t testing.TB, path string, members ...arMember) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString(arMagic)
	for _, m := range members {
		fmt.Fprintf(&b, "%-16s%-12d%-6d%-6d%-8o%-10d`\n", m.name, 0, 0, 0, 0o644, len(m.data))
		b.Write(m.data)
		if len(m.data)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tarEntry is one entry of a tar stream built by makeTar.
type tarEntry struct {
	name, link string
	typ        byte
	mode       int64
	body       string
}

func makeTar(t testing.TB, ents ...tarEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: mode, Size: int64(len(e.body)), Format: tar.FormatGNU}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// debWithData writes a .deb whose data member is dataName with contents data.
func debWithData(t testing.TB, path, dataName string, data []byte) {
	t.Helper()
	control := makeTar(t, tarEntry{name: "./control", typ: tar.TypeReg, body: "Package: x\n"})
	writeAr(t, path,
		arMember{"debian-binary", []byte("2.0\n")},
		arMember{"control.tar", control},
		arMember{dataName, data})
}

// sparseEntry is a sparse file for sparseTar: size bytes long, its
// fragments' data at their offsets (ascending, at most 4) and holes
// everywhere else.
type sparseEntry struct {
	name  string
	size  int64
	frags []fragment
	gnu   bool // old GNU format (type 'S'); else PAX format 0.1 (GNU tar --sparse --format=posix)
}

// fragment is data at an offset of a sparse file.
type fragment struct {
	off  int64
	data string
}

// sparseTar returns a tar stream of sparse entries, ended. archive/tar
// reads them but cannot write them: the headers are built here by hand
// (layouts as in archive/tar's format.go).
func sparseTar(ents ...sparseEntry) []byte {
	var b bytes.Buffer
	for _, e := range ents {
		var data string
		var gnuMap []byte
		var paxMap []string
		for _, f := range e.frags {
			data += f.data
			gnuMap = fmt.Appendf(gnuMap, "%011o\x00%011o\x00", f.off, len(f.data))
			paxMap = append(paxMap, fmt.Sprint(f.off), fmt.Sprint(len(f.data)))
		}
		if e.gnu {
			b.Write(rawHeader(e.name, tar.TypeGNUSparse, int64(len(data)), true, func(h []byte) {
				copy(h[386:482], gnuMap)                        // sparse map
				copy(h[483:], fmt.Sprintf("%011o\x00", e.size)) // real size
			}))
		} else {
			recs := paxRecord("GNU.sparse.numblocks", fmt.Sprint(len(e.frags))) +
				paxRecord("GNU.sparse.map", strings.Join(paxMap, ",")) +
				paxRecord("GNU.sparse.size", fmt.Sprint(e.size))
			b.Write(rawHeader("PaxHeaders/x", tar.TypeXHeader, int64(len(recs)), false, nil))
			b.Write(pad512([]byte(recs)))
			b.Write(rawHeader(e.name, tar.TypeReg, int64(len(data)), false, nil))
		}
		b.Write(pad512([]byte(data)))
	}
	b.Write(make([]byte, 1024)) // end of archive
	return b.Bytes()
}

// rawHeader returns a tar header block (ustar, or GNU when gnu is set);
// fill sets further fields before the checksum is computed.
func rawHeader(name string, typ byte, size int64, gnu bool, fill func(h []byte)) []byte {
	h := make([]byte, 512)
	copy(h[0:100], name)
	copy(h[100:], "0000644\x000000000\x000000000\x00") // mode, uid, gid
	copy(h[124:], fmt.Sprintf("%011o\x00%011o\x00", size, 0))
	h[156] = typ
	if gnu {
		copy(h[257:], "ustar  \x00")
	} else {
		copy(h[257:], "ustar\x0000")
	}
	if fill != nil {
		fill(h)
	}
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

// paxRecord formats one PAX record: its length (counting itself), key=value.
func paxRecord(k, v string) string {
	rec := " " + k + "=" + v + "\n"
	n := len(rec)
	for len(strconv.Itoa(n))+len(rec) != n {
		n = len(strconv.Itoa(n)) + len(rec)
	}
	return strconv.Itoa(n) + rec
}

// pad512 pads b with zeros to a whole number of tar blocks.
func pad512(b []byte) []byte {
	return append(b, make([]byte, (512-len(b)%512)%512)...)
}
