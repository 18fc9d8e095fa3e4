// Package testarch makes Arch Linux packages and signed pacman repositories
// for tests with the real makepkg, gpg and repo-add (Debian's makepkg,
// pacman-package-manager and gnupg packages). makepkg refuses to run as
// root: as root it runs as the unprivileged user "nobody", which every
// Debian system has.
package testarch

import (
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

// builder is the unprivileged user makepkg runs as when the test is root.
const builder = "nobody"

// Pkg describes one package to build.
type Pkg struct {
	Name     string
	Version  string // pkgver-pkgrel, e.g. "1.0-1"
	Arch     string // "" = x86_64
	Depends  []string
	Provides []string
	Files    map[string]string // path in the package (usr/bin/x) → host file copied there
	Data     map[string]string // path in the package → contents
	Symlinks map[string]string // path in the package → target
	Ext      string            // "" = .pkg.tar.zst; .pkg.tar.xz, .pkg.tar.gz
}

// Build makes p with makepkg and returns the package file's path in outDir.
func Build(t testing.TB, outDir string, p Pkg) string {
	t.Helper()
	makepkg := testenv.NeedTool(t, "makepkg", "makepkg")
	testenv.NeedTool(t, "fakeroot", "fakeroot")
	testenv.NeedTool(t, "bsdtar", "libarchive-tools")
	if p.Arch == "" {
		p.Arch = "x86_64"
	}
	if p.Ext == "" {
		p.Ext = ".pkg.tar.zst"
	}
	ver, rel, ok := strings.Cut(p.Version, "-")
	if !ok {
		t.Fatalf("testarch: version %q is not pkgver-pkgrel", p.Version)
	}
	work, err := os.MkdirTemp("", "testarch-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	stage := filepath.Join(work, "stage")
	for dest, src := range p.Files {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(stage, dest), string(data), 0o755)
	}
	for dest, data := range p.Data {
		writeFile(t, filepath.Join(stage, dest), data, 0o644)
	}
	for dest, target := range p.Symlinks {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(stage, dest)), 0o755))
		must(t, os.Symlink(target, filepath.Join(stage, dest)))
	}
	pkgbuild := fmt.Sprintf(`pkgname=%s
pkgver=%s
pkgrel=%s
pkgdesc="pkginitrd test package"
arch=(%s)
license=(GPL)
depends=(%s)
provides=(%s)
options=('!strip' '!debug' 'emptydirs')
package() {
	if [ -d "$startdir/stage" ]; then cp -a "$startdir/stage/." "$pkgdir/"; fi
}
`, p.Name, ver, rel, p.Arch, quote(p.Depends), quote(p.Provides))
	writeFile(t, filepath.Join(work, "PKGBUILD"), pkgbuild, 0o644)
	dest := filepath.Join(work, "out")
	must(t, os.MkdirAll(dest, 0o755))
	env := []string{"PKGDEST=" + dest, "PKGEXT=" + p.Ext, "BUILDDIR=" + filepath.Join(work, "build"), "SRCDEST=" + work, "HOME=" + work}
	argv := []string{makepkg, "--nodeps", "--force", "--noconfirm", "--nocolor"}
	if os.Geteuid() == 0 {
		chownTree(t, work)
		runuser := testenv.NeedTool(t, "runuser", "util-linux")
		argv = append(append([]string{runuser, "-u", builder, "--", "env"}, env...), argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("makepkg %s: %v\n%s", p.Name, err, out)
	}
	name := fmt.Sprintf("%s-%s-%s%s", p.Name, p.Version, p.Arch, p.Ext)
	must(t, os.MkdirAll(outDir, 0o755))
	data, err := os.ReadFile(filepath.Join(dest, name))
	if err != nil {
		t.Fatalf("makepkg %s: %v", p.Name, err)
	}
	out := filepath.Join(outDir, name)
	writeFile(t, out, string(data), 0o644)
	return out
}

// Key is a signing key in its own GnuPG home.
type Key struct {
	Home, Fingerprint string
	Public            string // armored public key file
}

// NewKey makes an ed25519 signing key without passphrase under dir.
func NewKey(t testing.TB, dir, name string) Key {
	t.Helper()
	gpg := testenv.NeedTool(t, "gpg", "gnupg")
	k := Key{Home: filepath.Join(dir, name+"-gnupg"), Public: filepath.Join(dir, name+".asc")}
	must(t, os.MkdirAll(k.Home, 0o700))
	t.Cleanup(func() { _ = exec.Command("gpgconf", "--homedir", k.Home, "--kill", "all").Run() })
	run(t, k.Home, gpg, "--batch", "--passphrase", "", "--quick-gen-key", name+" <"+name+"@pkginitrd.test>", "ed25519", "sign", "never")
	out := run(t, k.Home, gpg, "--batch", "--with-colons", "--list-secret-keys")
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && len(f) > 9 {
			k.Fingerprint = f[9]
			break
		}
	}
	if k.Fingerprint == "" {
		t.Fatalf("gpg: no fingerprint for the new key in\n%s", out)
	}
	writeFile(t, k.Public, run(t, k.Home, gpg, "--batch", "--armor", "--export", k.Fingerprint), 0o644)
	return k
}

// Repo signs pkgs with key, copies them into dir and makes the signed
// repository database dir/name.db (repo-add --sign). dir can then be
// served as "Server = file://dir".
func Repo(t testing.TB, dir, name string, key Key, pkgs ...string) {
	t.Helper()
	gpg := testenv.NeedTool(t, "gpg", "gnupg")
	repoAdd := testenv.NeedTool(t, "repo-add", "pacman-package-manager")
	must(t, os.MkdirAll(dir, 0o755))
	var files []string
	for _, p := range pkgs {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.Base(p))
		writeFile(t, dst, string(data), 0o644)
		os.Remove(dst + ".sig")
		run(t, key.Home, gpg, "--batch", "--local-user", key.Fingerprint, "--detach-sign", "--no-armor", dst)
		files = append(files, dst)
	}
	run(t, key.Home, repoAdd, append([]string{"--sign", "--key", key.Fingerprint, filepath.Join(dir, name+".db.tar.zst")}, files...)...)
}

// run runs prog with GNUPGHOME=home and returns its standard output.
func run(t testing.TB, home, prog string, args ...string) string {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", prog, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func quote(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = "'" + s + "'"
	}
	return strings.Join(q, " ")
}

func writeFile(t testing.TB, p, data string, mode fs.FileMode) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(data), mode))
}

// chownTree gives dir to the builder user so that makepkg can write there.
func chownTree(t testing.TB, dir string) {
	t.Helper()
	u, err := user.Lookup(builder)
	if err != nil {
		testenv.Missing(t, "makepkg refuses root and there is no user %q to build as: %v", builder, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	must(t, filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	}))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// lvmDebs are the Debian 12 packages holding lvm and the libraries it loads.
func lvmDebs() []string {
	return []string{"lvm2", "libaio1", "libblkid1", "libc6", "libdevmapper-event1.02.1", "libdevmapper1.02.1", "libedit2",
		"libselinux1", "libsystemd0", "libudev1", "libpcre2-8-0", "libcap2", "libgcrypt20", "libgpg-error0", "liblz4-1",
		"liblzma5", "libzstd1", "libbsd0", "libmd0", "libtinfo6"}
}

// Fixture is a signed local repository of real programs laid out the Arch
// way (/usr/bin, /usr/lib), made from Debian's packages: busybox (static),
// lvm2 → device-mapper (through the virtual "libdevmapper.so" and a
// versioned "device-mapper>=2.03") → glibc, and lvm2-libs with lvm's other
// libraries; as on Arch, busybox is in "extra" and the rest in "core".
type Fixture struct {
	Dir   string   // serve as file://Dir: it holds the databases Dir/core.db and Dir/extra.db
	Names []string // "core", "extra"
	Key   Key
}

// NewFixture builds the fixture repository under dir. debs returns the
// path of a Debian package (testdeb.Deb).
func NewFixture(t testing.TB, dir string, debs func(testing.TB, string) string) Fixture {
	t.Helper()
	dpkgDeb := testenv.NeedTool(t, "dpkg-deb", "dpkg")
	deb := filepath.Join(dir, "debian")
	for _, name := range append(lvmDebs(), "busybox-static") {
		if out, err := exec.Command(dpkgDeb, "-x", debs(t, name), deb).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -x %s: %v\n%s", name, err, out)
		}
	}
	libs := libClosure(t, deb, filepath.Join(deb, "sbin/lvm"))
	glibc := map[string]string{"usr/lib/ld-linux-x86-64.so.2": filepath.Join(deb, "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")}
	dm, other := map[string]string{}, map[string]string{}
	for soname, src := range libs {
		switch {
		case strings.HasPrefix(soname, "libc.so") || strings.HasPrefix(soname, "libm.so"):
			glibc["usr/lib/"+soname] = src
		case strings.HasPrefix(soname, "libdevmapper"):
			dm["usr/lib/"+soname] = src
		default:
			other["usr/lib/"+soname] = src
		}
	}
	out := filepath.Join(dir, "pkgs")
	pkgs := []string{
		Build(t, out, Pkg{Name: "glibc", Version: "2.36-1", Files: glibc}),
		Build(t, out, Pkg{Name: "device-mapper", Version: "2.03.16-1", Depends: []string{"glibc"}, Provides: []string{"libdevmapper.so=1.02-64"}, Files: dm}),
		Build(t, out, Pkg{Name: "lvm2-libs", Version: "2.03.16-1", Depends: []string{"glibc"}, Files: other}),
		Build(t, out, Pkg{Name: "lvm2", Version: "2.03.16-1", Depends: []string{"glibc", "libdevmapper.so", "device-mapper>=2.03", "lvm2-libs"},
			Files: map[string]string{"usr/bin/lvm": filepath.Join(deb, "sbin/lvm")}}),
	}
	busybox := Build(t, out, Pkg{Name: "busybox", Version: "1.35.0-1", Files: map[string]string{"usr/bin/busybox": filepath.Join(deb, "bin/busybox")}})
	f := Fixture{Dir: filepath.Join(dir, "repo"), Names: []string{"core", "extra"}, Key: NewKey(t, dir, "fixture")}
	Repo(t, f.Dir, "core", f.Key, pkgs...)
	Repo(t, f.Dir, "extra", f.Key, busybox)
	return f
}

// libClosure returns the shared libraries prog loads, transitively, by
// soname, each resolved to its file in the unpacked Debian tree root.
func libClosure(t testing.TB, root, prog string) map[string]string {
	t.Helper()
	found := map[string]string{}
	queue := []string{prog}
	for len(queue) > 0 {
		f, err := elf.Open(queue[0])
		if err != nil {
			t.Fatal(err)
		}
		needed, err := f.ImportedLibraries()
		_ = f.Close()
		if err != nil {
			t.Fatal(err)
		}
		queue = queue[1:]
		for _, n := range needed {
			if _, ok := found[n]; ok {
				continue
			}
			p := ""
			for _, d := range []string{"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"} {
				if real, err := filepath.EvalSymlinks(filepath.Join(root, d, n)); err == nil {
					p = real
					break
				}
			}
			if p == "" {
				t.Fatalf("testarch: %s (needed by %s) is in none of the Debian packages %v", n, queue, lvmDebs())
			}
			found[n] = p
			queue = append(queue, p)
		}
	}
	return found
}
