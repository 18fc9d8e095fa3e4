package elfdeps

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// hostTree builds a merged-/usr image tree from this machine's real
// binaries: ls and its libraries, plus libraries ls does not need.
func hostTree(t *testing.T) *fstree.Tree {
	t.Helper()
	const libdir = "usr/lib/x86_64-linux-gnu"
	tr := fstree.New()
	file := func(dest, src, origin string) {
		t.Helper()
		if _, err := os.Stat(src); err != nil {
			t.Fatalf("this test reads the host's %s: %v", src, err)
		}
		if err := tr.AddHostPath(src, dest, origin); err != nil {
			t.Fatal(err)
		}
	}
	link := func(p, target string) {
		t.Helper()
		if err := tr.Add(fstree.Entry{Path: p, Kind: fstree.Symlink, Mode: 0o777, Target: target, Origin: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	hostLib := func(name string) string {
		p, err := filepath.EvalSymlinks(filepath.Join("/usr/lib/x86_64-linux-gnu", name))
		if err != nil {
			t.Fatalf("this test reads the host's %s: %v", name, err)
		}
		return p
	}
	file("usr/bin/ls", "/usr/bin/ls", "coreutils")
	for _, l := range []string{"libc.so.6", "ld-linux-x86-64.so.2", "libselinux.so.1", "libpcre2-8.so.0", "libm.so.6", "libmvec.so.1", "libgcc_s.so.1"} {
		file(libdir+"/"+l, hostLib(l), "libc6")
	}
	// Included by the user into a library directory: kept, as are its
	// dependencies (only libc).
	file(libdir+"/libpcre2-copy.so.0", hostLib("libpcre2-8.so.0"), "include /usr/lib/x86_64-linux-gnu/libpcre2-8.so.0")
	link("lib", "usr/lib")
	link("lib64", "usr/lib64")
	link("usr/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
	link(libdir+"/libm.so", "libm.so.6")
	if err := tr.Add(fstree.Entry{Path: "etc/ld.so.conf.d/x86_64-linux-gnu.conf", Kind: fstree.File, Mode: 0o644,
		Data: []byte("# multiarch support\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n"), Origin: "libc6"}); err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestUnused(t *testing.T) {
	const libdir = "usr/lib/x86_64-linux-gnu"
	for _, tc := range []struct {
		name string
		keep []string
		add  string // another host program to put in usr/bin
		want []string
	}{
		{"ls needs libc, libselinux, libpcre2 and the loader", DlopenedLibraries(), "",
			[]string{libdir + "/libm.so", libdir + "/libm.so.6", libdir + "/libmvec.so.1"}},
		{"nothing kept", nil, "",
			[]string{libdir + "/libgcc_s.so.1", libdir + "/libm.so", libdir + "/libm.so.6", libdir + "/libmvec.so.1"}},
		{"a program that needs libm keeps it", DlopenedLibraries(), "/usr/bin/awk", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := hostTree(t)
			if tc.add != "" {
				real, err := filepath.EvalSymlinks(tc.add)
				if err != nil {
					t.Fatal(err)
				}
				if err := tr.AddHostPath(real, "usr/bin/prog", "test"); err != nil {
					t.Fatal(err)
				}
			}
			got, unresolved, err := Unused(tr, tc.keep)
			if err != nil {
				t.Fatal(err)
			}
			if tc.add != "" {
				// awk (mawk) needs libm; whatever else it needs is not in
				// the tree and is reported, not guessed.
				if slices.Contains(got, libdir+"/libm.so.6") {
					t.Errorf("Unused() = %v, want libm.so.6 kept for %s", got, tc.add)
				}
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Unused() = %v, want %v", got, tc.want)
			}
			if len(unresolved) != 0 {
				t.Errorf("Unused() unresolved = %v, want none", unresolved)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	tr := hostTree(t)
	for _, tc := range []struct{ in, want string }{
		{"lib64/ld-linux-x86-64.so.2", "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"},
		{"/lib/x86_64-linux-gnu/libm.so", "usr/lib/x86_64-linux-gnu/libm.so.6"},
		{"usr/bin/ls", "usr/bin/ls"},
	} {
		if got, ok := resolve(tr, tc.in); !ok || got != tc.want {
			t.Errorf("resolve(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
	if got, ok := resolve(tr, "usr/lib/nothing.so"); ok {
		t.Errorf("resolve(missing) = %q, want not found", got)
	}
}
