package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testdeb"
)

// realDebs are Debian packages that exercise the unpacker: many symlinks
// (busybox has few files, e2fsprogs has hard links to mke2fs/e2fsck under
// /sbin, libc6 has /lib64 and /lib paths for merged /usr).
var realDebs = []string{"busybox", "e2fsprogs", "libc6"}

func TestUnpackMatchesDpkgDeb(t *testing.T) {
	for _, pkg := range realDebs {
		t.Run(pkg, func(t *testing.T) {
			deb := testdeb.Deb(t, pkg)
			dir := t.TempDir()
			if err := Unpack(context.Background(), deb, dir, Limits{}); err != nil {
				t.Fatalf("Unpack(%s) = %v, want nil", deb, err)
			}
			got, want := describe(t, dir), describe(t, dpkgExtract(t, deb))
			if len(want) < 5 {
				t.Fatalf("dpkg-deb -x %s produced only %d paths", deb, len(want))
			}
			compareTrees(t, "Unpack("+filepath.Base(deb)+")", got, want)
		})
	}
}

// buildTree writes a package tree with every kind of entry the unpacker must
// reproduce and returns its root (with DEBIAN/control, for dpkg-deb --build).
func buildTree(t *testing.T) string {
	t.Helper()
	root := tempDir(t)
	big := make([]byte, 300<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.IntN(16)) // compressible but not trivially
	}
	files := []struct {
		path string
		mode os.FileMode
		body []byte
	}{
		{"DEBIAN/control", 0o644, []byte("Package: pkginitrd-test\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <test@example.org>\nDescription: unpack test\n")},
		{"usr/bin/prog", 0o755, []byte("#!/bin/sh\necho prog\n")},
		{"usr/bin/suid", 0o755 | os.ModeSetuid, []byte("setuid\n")},
		{"usr/bin/sgid", 0o755 | os.ModeSetgid, []byte("setgid\n")},
		{"usr/share/pkg/empty", 0o644, nil},
		{"usr/share/pkg/big", 0o644, big},
		{"usr/share/ro/file", 0o444, []byte("in a read-only dir\n")},
		{"etc/secret/key", 0o600, []byte("secret\n")},
	}
	for _, f := range files {
		p := filepath.Join(root, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		must(t, os.Chmod(filepath.Dir(p), 0o755)) // whatever the umask: dpkg-deb checks DEBIAN's mode
		if err := os.WriteFile(p, f.body, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Link(filepath.Join(root, "usr/bin/prog"), filepath.Join(root, "usr/bin/prog-hardlink")))
	must(t, os.Symlink("prog", filepath.Join(root, "usr/bin/rel-symlink")))
	must(t, os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755))
	must(t, os.Symlink("/usr/bin/prog", filepath.Join(root, "usr/lib/abs-symlink")))
	must(t, os.MkdirAll(filepath.Join(root, "var/spool/sticky"), 0o755))
	must(t, os.Chmod(filepath.Join(root, "var/spool/sticky"), 0o777|os.ModeSticky))
	must(t, os.Chmod(filepath.Join(root, "etc/secret"), 0o700))
	must(t, os.Chmod(filepath.Join(root, "usr/share/ro"), 0o555))
	return root
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestUnpackCompressions(t *testing.T) {
	tree := buildTree(t)
	work := t.TempDir()
	debs := map[string]string{} // compression → .deb
	for _, z := range []string{"xz", "zstd", "gzip", "none"} {
		deb := filepath.Join(work, z+".deb")
		run(t, "", "dpkg-deb", "--root-owner-group", "-Z"+z, "--build", tree, deb)
		debs[z] = deb
	}
	// dpkg-deb cannot build bzip2 or lzma members any more but still reads
	// them: recompress the plain data.tar with the system tools.
	members := t.TempDir()
	run(t, members, "ar", "x", debs["none"])
	control, err := os.ReadFile(filepath.Join(members, "control.tar"))
	must(t, err)
	for _, c := range []struct{ name, tool string }{{"bzip2", "bzip2"}, {"lzma", "xz"}} {
		args := []string{"-c", filepath.Join(members, "data.tar")}
		suffix := ".bz2"
		if c.name == "lzma" {
			args, suffix = append([]string{"--format=lzma"}, args...), ".lzma"
		}
		data := run(t, "", c.tool, args...)
		deb := filepath.Join(work, c.name+".deb")
		writeAr(t, deb, arMember{"debian-binary", []byte("2.0\n")}, arMember{"control.tar", control}, arMember{"data.tar" + suffix, data})
		debs[c.name] = deb
	}
	wantMember := map[string]string{"xz": "data.tar.xz", "zstd": "data.tar.zst", "gzip": "data.tar.gz", "none": "data.tar", "bzip2": "data.tar.bz2", "lzma": "data.tar.lzma"}
	for z, deb := range debs {
		t.Run(z, func(t *testing.T) {
			if list := string(run(t, "", "ar", "t", deb)); !strings.Contains(list, wantMember[z]+"\n") {
				t.Fatalf("%s has members %q, want %s", deb, list, wantMember[z])
			}
			dir := tempDir(t)
			if err := Unpack(context.Background(), deb, dir, Limits{}); err != nil {
				t.Fatalf("Unpack(%s) = %v, want nil", deb, err)
			}
			got, want := describe(t, dir), describe(t, dpkgExtract(t, deb))
			compareTrees(t, "Unpack("+z+".deb)", got, want)
			// The features under test must really be in the archive.
			for p, frag := range map[string]string{
				"usr/bin/prog":          "links=usr/bin/prog,usr/bin/prog-hardlink",
				"usr/bin/prog-hardlink": "-rwxr-xr-x",
				"usr/bin/suid":          "urwxr-xr-x",
				"usr/bin/sgid":          "grwxr-xr-x",
				"var/spool/sticky":      "dtrwxrwxrwx",
				"usr/share/ro":          "dr-xr-xr-x",
				"usr/share/ro/file":     "-r--r--r--",
				"etc/secret":            "drwx------",
				"usr/share/pkg/empty":   "-rw-r--r--",
				"usr/bin/rel-symlink":   "Lrwxrwxrwx -> prog",
				"usr/lib/abs-symlink":   "Lrwxrwxrwx -> /usr/bin/prog",
			} {
				if !strings.Contains(got[p], frag) {
					t.Errorf("Unpack(%s.deb): %s = %q, want it to contain %q", z, p, got[p], frag)
				}
			}
		})
	}
}

func TestUnpackRejectsUnsafe(t *testing.T) {
	reg := func(name string) tarEntry { return tarEntry{name: name, typ: tar.TypeReg, body: "evil\n"} }
	tests := []struct {
		name string
		ents []tarEntry
	}{
		{"dotdot", []tarEntry{reg("../escaped")}},
		{"dotdot inside", []tarEntry{reg("./usr/../../escaped")}},
		{"absolute", []tarEntry{reg("/escaped")}},
		{"through absolute symlink", []tarEntry{{name: "./link", link: "/", typ: tar.TypeSymlink}, reg("./link/escaped")}},
		{"through relative symlink", []tarEntry{{name: "./link", link: "..", typ: tar.TypeSymlink}, reg("./link/escaped")}},
		{"through inner symlink", []tarEntry{{name: "./d/", typ: tar.TypeDir, mode: 0o755}, {name: "./link", link: "d", typ: tar.TypeSymlink}, reg("./link/escaped")}},
		{"hardlink dotdot", []tarEntry{{name: "./h", link: "../outside/victim", typ: tar.TypeLink}}},
		{"hardlink absolute", []tarEntry{{name: "./h", link: "/etc/passwd", typ: tar.TypeLink}}},
		{"hardlink to symlink", []tarEntry{{name: "./link", link: "/etc/passwd", typ: tar.TypeSymlink}, {name: "./h", link: "./link", typ: tar.TypeLink}}},
		{"hardlink through symlink", []tarEntry{{name: "./link", link: "..", typ: tar.TypeSymlink}, {name: "./h", link: "./link/outside/victim", typ: tar.TypeLink}}},
		{"dir through symlink", []tarEntry{{name: "./link", link: "..", typ: tar.TypeSymlink}, {name: "./link/newdir/", typ: tar.TypeDir, mode: 0o755}}},
		{"symlink through symlink", []tarEntry{{name: "./link", link: "..", typ: tar.TypeSymlink}, {name: "./link/s", link: "x", typ: tar.TypeSymlink}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			must(t, os.MkdirAll(outside, 0o755))
			must(t, os.WriteFile(filepath.Join(outside, "victim"), []byte("victim\n"), 0o644))
			deb := filepath.Join(base, "evil.deb")
			debWithData(t, deb, "data.tar", makeTar(t, tt.ents...))
			dest := filepath.Join(base, "dest")
			err := Unpack(context.Background(), deb, dest, Limits{})
			if !errors.Is(err, ErrUnsafePath) {
				t.Errorf("Unpack(%s) = %v, want %v", tt.name, err, ErrUnsafePath)
			}
			if err != nil && !strings.Contains(err.Error(), deb) {
				t.Errorf("Unpack error %q does not name the archive %s", err, deb)
			}
			ents, _ := os.ReadDir(base)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if strings.Join(names, " ") != "dest evil.deb outside" {
				t.Errorf("after Unpack(%s) the parent holds %v, want [dest evil.deb outside]", tt.name, names)
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 1 {
				t.Errorf("after Unpack(%s) %s holds %d entries, want only victim", tt.name, outside, len(ents))
			}
			if _, err := os.Lstat("/escaped"); err == nil {
				t.Fatalf("Unpack(%s) wrote /escaped", tt.name)
			}
		})
	}
}

func TestUnpackErrors(t *testing.T) {
	base := t.TempDir()
	good := makeTar(t, tarEntry{name: "./usr/bin/x", typ: tar.TypeReg, body: "x\n"})
	tests := []struct {
		name  string
		write func(path string)
		want  string // substring of the error
	}{
		{"not an archive", func(p string) { os.WriteFile(p, []byte("hello world\n"), 0o644) }, "unknown archive format"},
		{"truncated rpm", func(p string) { os.WriteFile(p, []byte{0xed, 0xab, 0xee, 0xdb, 3, 0, 0, 1}, 0o644) }, "rpm lead: unexpected EOF"},
		{"no data member", func(p string) { writeAr(t, p, arMember{"debian-binary", []byte("2.0\n")}) }, "no data.tar member"},
		{"unknown compression", func(p string) { debWithData(t, p, "data.tar.lz4", good) }, `unsupported compression ".lz4"`},
		{"corrupt xz", func(p string) { debWithData(t, p, "data.tar.xz", []byte("not xz at all")) }, "data.tar.xz"},
		{"truncated", func(p string) {
			var b bytes.Buffer
			debWithData(t, p, "data.tar", good)
			data, _ := os.ReadFile(p)
			b.Write(data[:len(data)-700])
			os.WriteFile(p, b.Bytes(), 0o644)
		}, "unexpected EOF"},
		{"character device", func(p string) {
			debWithData(t, p, "data.tar", makeTar(t, tarEntry{name: "./dev/console", typ: tar.TypeChar}))
		}, "./dev/console: unpack: unsupported: character device"},
		{"block device", func(p string) {
			debWithData(t, p, "data.tar", makeTar(t, tarEntry{name: "./dev/sda", typ: tar.TypeBlock}))
		}, "./dev/sda: unpack: unsupported: block device"},
		{"fifo", func(p string) {
			debWithData(t, p, "data.tar", makeTar(t, tarEntry{name: "./run/initctl", typ: tar.TypeFifo}))
		}, "./run/initctl: unpack: unsupported: FIFO"},
		{"unknown type", func(p string) {
			debWithData(t, p, "data.tar", makeTar(t, tarEntry{name: "./odd", typ: 'Z'}))
		}, "./odd: unpack: unsupported: unknown entry type 'Z'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(base, strings.ReplaceAll(tt.name, " ", "-")+".deb")
			tt.write(p)
			err := Unpack(context.Background(), p, t.TempDir(), Limits{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("Unpack(%s) = %v, want an error naming %s and containing %q", tt.name, err, p, tt.want)
			}
		})
	}
}

func TestUnpackLimits(t *testing.T) {
	lim := Limits{MaxPackageSize: 1 << 20, MaxFileSize: 512 << 10, MaxEntries: 10}
	files := func(n int) []tarEntry {
		var ents []tarEntry
		for i := range n {
			ents = append(ents, tarEntry{name: fmt.Sprintf("./f%d", i), typ: tar.TypeReg, body: "x\n"})
		}
		return ents
	}
	big := func(name string, size int64, gnu bool) sparseEntry {
		return sparseEntry{name: name, size: size, frags: []fragment{{size - 4, "end\n"}}, gnu: gnu}
	}
	tests := []struct {
		name string
		lim  Limits
		data []byte
		want string // "" = no error
	}{
		{"entries at the limit", lim, makeTar(t, files(10)...), ""},
		{"too many entries", lim, makeTar(t, files(11)...), "./f10: unpack: limit exceeded: more than 10 entries (max_entries)"},
		{"file at the limit", lim, makeTar(t, tarEntry{name: "./f", typ: tar.TypeReg, body: strings.Repeat("x", 512<<10)}), ""},
		{"file too large", lim, makeTar(t, tarEntry{name: "./f", typ: tar.TypeReg, body: strings.Repeat("x", 600<<10)}),
			"./f: unpack: limit exceeded: file of 600 KiB, more than max_file_size 512 KiB"},
		{"GNU sparse file too large", lim, sparseTar(big("./big", 8<<20, true)), "./big: unpack: limit exceeded: file of 8 MiB, more than max_file_size 512 KiB"},
		{"PAX sparse file too large", lim, sparseTar(big("./big", 8<<20, false)), "./big: unpack: limit exceeded: file of 8 MiB, more than max_file_size 512 KiB"},
		{"package too large", lim, sparseTar(big("./a", 384<<10, true), big("./b", 384<<10, false), big("./c", 384<<10, true)),
			"./c: unpack: limit exceeded: package unpacks to more than max_package_size 1 MiB"},
		{"default file limit", Limits{}, sparseTar(big("./huge", 2<<30, false)), "./huge: unpack: limit exceeded: file of 2 GiB, more than max_file_size 512 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deb := filepath.Join(t.TempDir(), "big_1.0_all.deb")
			debWithData(t, deb, "data.tar", tt.data)
			err := Unpack(context.Background(), deb, tempDir(t), tt.lim)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Unpack(%s) = %v, want nil", tt.name, err)
			case tt.want != "" && (!errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), deb+": "+tt.want)):
				t.Errorf("Unpack(%s) = %v, want %v naming %s and containing %q", tt.name, err, ErrLimit, deb, tt.want)
			}
		})
	}
}

func TestDefaultLimits(t *testing.T) {
	want := Limits{MaxPackageSize: 1 << 30, MaxFileSize: 512 << 20, MaxEntries: 100000}
	for _, l := range []Limits{{}, {MaxPackageSize: -1, MaxFileSize: -1, MaxEntries: -1}} {
		if got := l.withDefaults(); got != want {
			t.Errorf("%+v.withDefaults() = %+v, want %+v", l, got, want)
		}
	}
	set := Limits{MaxPackageSize: 1, MaxFileSize: 2, MaxEntries: 3}
	if got := set.withDefaults(); got != set {
		t.Errorf("%+v.withDefaults() = %+v, want it unchanged", set, got)
	}
}

// TestUnpackSparse checks that holes stay holes: tar's sparse entries and
// runs of zeros in regular entries take no disk space once unpacked.
func TestUnpackSparse(t *testing.T) {
	const size = 64 << 20
	middle := []fragment{{1 << 20, "middle"}}           // ends in a hole
	both := append(middle, fragment{size - 4, "end\n"}) // ends in data
	contents := func(frags []fragment) []byte {
		b := make([]byte, size)
		for _, f := range frags {
			copy(b[f.off:], f.data)
		}
		return b
	}
	tests := []struct {
		name string
		data []byte
		want []byte
	}{
		{"GNU sparse", sparseTar(sparseEntry{"./sparse", size, both, true}), contents(both)},
		{"GNU sparse, trailing hole", sparseTar(sparseEntry{"./sparse", size, middle, true}), contents(middle)},
		{"PAX sparse", sparseTar(sparseEntry{"./sparse", size, both, false}), contents(both)},
		{"PAX sparse, trailing hole", sparseTar(sparseEntry{"./sparse", size, middle, false}), contents(middle)},
		{"zeros in a regular file", makeTar(t, tarEntry{name: "./sparse", typ: tar.TypeReg, body: string(contents(both))}), contents(both)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deb := filepath.Join(t.TempDir(), "sparse_1.0_all.deb")
			debWithData(t, deb, "data.tar", tt.data)
			dir := t.TempDir()
			if err := Unpack(context.Background(), deb, dir, Limits{}); err != nil {
				t.Fatalf("Unpack(%s) = %v, want nil", tt.name, err)
			}
			p := filepath.Join(dir, "sparse")
			got, err := os.ReadFile(p)
			must(t, err)
			if !bytes.Equal(got, tt.want) {
				t.Errorf("Unpack(%s): %s has %d bytes, not the archive's %d (or other contents)", tt.name, p, len(got), len(tt.want))
			}
			fi, err := os.Stat(p)
			must(t, err)
			if used := fi.Sys().(*syscall.Stat_t).Blocks * 512; used > 256<<10 {
				t.Errorf("Unpack(%s): %s uses %d bytes of disk for %d bytes of file, want at most 256 KiB (holes kept)", tt.name, p, used, size)
			}
		})
	}
}

func BenchmarkUnpack(b *testing.B) {
	for _, pkg := range []string{"libc6", "e2fsprogs"} {
		deb := testdeb.Deb(b, pkg)
		fi, err := os.Stat(deb)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(pkg, func(b *testing.B) {
			b.SetBytes(fi.Size())
			for b.Loop() {
				dir := b.TempDir()
				if err := Unpack(context.Background(), deb, dir, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
