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
