// Package testarch makes Arch Linux packages and signed pacman repositories
// for tests with the real makepkg, gpg and repo-add (Debian's makepkg,
// pacman-package-manager and gnupg packages). makepkg refuses to run as
// root: as root it runs as the unprivileged user "tester".
package testarch

import (
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
const builder = "tester"

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
	env := []string{"PKGDEST=" + dest, "PKGEXT=" + p.Ext, "BUILDDIR=" + filepath.Join(work, "build"), "SRCDEST=" + work}
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
