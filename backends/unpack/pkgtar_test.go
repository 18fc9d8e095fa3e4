package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/testarch"
)

// TestUnpackPacman unpacks packages made by the real makepkg in each
// compression pacman uses and compares the tree with what bsdtar extracts,
// minus pacman's metadata files.
func TestUnpackPacman(t *testing.T) {
	out := t.TempDir()
	for _, ext := range []string{".pkg.tar.zst", ".pkg.tar.xz", ".pkg.tar.gz"} {
		t.Run(ext, func(t *testing.T) {
			pkg := testarch.Build(t, out, testarch.Pkg{
				Name: "demo", Version: "1.2-3", Ext: ext,
				Data:     map[string]string{"usr/bin/demo": "#!/bin/sh\necho demo\n", "etc/demo.conf": "x=1\n", "usr/share/demo/.hidden": "h\n"},
				Symlinks: map[string]string{"usr/bin/demo-link": "demo", "usr/lib/abs-link": "/usr/bin/demo"},
			})
			dir := tempDir(t)
			if err := Unpack(context.Background(), pkg, dir, Limits{}); err != nil {
				t.Fatal(err)
			}
			want := describe(t, bsdtarExtract(t, pkg))
			for _, meta := range []string{".PKGINFO", ".BUILDINFO", ".MTREE", ".INSTALL"} {
				delete(want, meta)
			}
			got := describe(t, dir)
			compareTrees(t, "Unpack("+filepath.Base(pkg)+")", got, want)
			for p, frag := range map[string]string{
				"usr/bin/demo-link":      "Lrwxrwxrwx -> demo",
				"usr/lib/abs-link":       "Lrwxrwxrwx -> /usr/bin/demo",
				"usr/share/demo/.hidden": "-rw-r--r--",
			} {
				if !strings.Contains(got[p], frag) {
					t.Errorf("%s = %q, want it to contain %q", p, got[p], frag)
				}
			}
			if _, err := os.Lstat(filepath.Join(dir, ".PKGINFO")); err == nil {
				t.Error("Unpack extracted .PKGINFO")
			}
		})
	}
}

// bsdtarExtract unpacks pkg with libarchive's bsdtar, as pacman does.
func bsdtarExtract(t *testing.T, pkg string) string {
	t.Helper()
	dir := tempDir(t)
	run(t, "", "bsdtar", "-xpf", pkg, "-C", dir)
	return dir
}

// pkgtar writes a pacman package of ents, compressed with zstd: the Go
// writer of the same format, for entries makepkg would never produce.
func pkgtar(t *testing.T, p string, ents ...tarEntry) {
	t.Helper()
	meta := makeTar(t, append([]tarEntry{{name: ".PKGINFO", typ: tar.TypeReg, body: "pkgname = evil\n"}}, ents...)...)
	var b bytes.Buffer
	w, err := compress.NewWriter(compress.Zstd, &b)
	must(t, err)
	_, err = w.Write(meta)
	must(t, err)
	must(t, w.Close())
	must(t, os.WriteFile(p, b.Bytes(), 0o644))
}

func TestUnpackPacmanRejectsUnsafe(t *testing.T) {
	reg := func(name string) tarEntry { return tarEntry{name: name, typ: tar.TypeReg, body: "evil\n"} }
	tests := []struct {
		name string
		ents []tarEntry
		want error
		path string // named in the error
	}{
		{"dotdot", []tarEntry{reg("../escaped")}, ErrUnsafePath, "../escaped"},
		{"absolute", []tarEntry{reg("/escaped")}, ErrUnsafePath, "/escaped"},
		{"through symlink", []tarEntry{{name: "usr", link: "/", typ: tar.TypeSymlink}, reg("usr/escaped")}, ErrUnsafePath, "usr/escaped"},
		{"through relative symlink", []tarEntry{{name: "link", link: "..", typ: tar.TypeSymlink}, reg("link/escaped")}, ErrUnsafePath, "link/escaped"},
		{"char device", []tarEntry{{name: "dev/console", typ: tar.TypeChar}}, ErrUnsupported, "dev/console"},
		{"block device", []tarEntry{{name: "dev/sda", typ: tar.TypeBlock}}, ErrUnsupported, "dev/sda"},
		{"fifo", []tarEntry{{name: "run/fifo", typ: tar.TypeFifo}}, ErrUnsupported, "run/fifo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			pkg := filepath.Join(base, "evil-1-1-x86_64.pkg.tar.zst")
			pkgtar(t, pkg, tt.ents...)
			dest := filepath.Join(base, "dest")
			err := Unpack(context.Background(), pkg, dest, Limits{})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), pkg) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("Unpack(%s) = %v, want %v naming %s and %s", tt.name, err, tt.want, pkg, tt.path)
			}
			ents, _ := os.ReadDir(base)
			if len(ents) != 2 {
				t.Errorf("after Unpack(%s) %s holds %d entries, want the package and dest", tt.name, base, len(ents))
			}
			if _, err := os.Lstat("/escaped"); err == nil {
				t.Fatalf("Unpack(%s) wrote /escaped", tt.name)
			}
		})
	}
}

func TestPacmanMetadata(t *testing.T) {
	for name, want := range map[string]bool{
		".PKGINFO": true, "./.BUILDINFO": true, ".MTREE": true, ".INSTALL": true, ".CHANGELOG": true,
		"usr/.hidden": false, "usr/bin/x": false, ".": false, "./": false, "..": false, "../x": false,
	} {
		if got := pacmanMetadata(name); got != want {
			t.Errorf("pacmanMetadata(%q) = %v, want %v", name, got, want)
		}
	}
}
