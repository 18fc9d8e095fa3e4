// Package testrpm makes RPMs with the real rpmbuild, signs them with
// throw-away gpg keys and builds signed dnf repositories, for the tests of
// the rpm unpacker, the dnf backend and the end-to-end boots.
package testrpm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

// File is one file of a package: regular (Data or Src), a symlink (Link),
// a hard link to another file of the package (HardLink) or a directory.
type File struct {
	Path     string // absolute, e.g. /usr/sbin/busybox
	Mode     os.FileMode
	Data     []byte
	Src      string // host file copied instead of Data
	Link     string
	HardLink string
	Dir      bool
	Ghost    bool // %ghost: listed, not in the payload
	Config   bool // %config
}

// Spec describes one package.
type Spec struct {
	Name, Version, Release string
	Arch                   string // default x86_64
	Requires, Provides     []string
	Conflicts              []string
	Files                  []File
	// Payload is rpm's _binary_payload, default zstd ("w19.zstdio");
	// "w9.gzdio" is gzip, "w6.xzdio" xz.
	Payload string
}

// Build makes the package with rpmbuild in a temporary directory and
// returns the .rpm's path.
func Build(t testing.TB, s Spec) string {
	t.Helper()
	rpmbuild := testenv.NeedTool(t, "rpmbuild", "rpm")
	top := t.TempDir()
	stage := filepath.Join(top, "stage")
	var list strings.Builder
	for _, f := range s.Files {
		stageFile(t, stage, f)
		switch {
		case f.Ghost:
			list.WriteString("%ghost ")
		case f.Config:
			list.WriteString("%config ")
		case f.Dir:
			list.WriteString("%dir ")
		}
		list.WriteString(f.Path + "\n")
	}
	if s.Arch == "" {
		s.Arch = "x86_64"
	}
	if s.Payload == "" {
		s.Payload = "w19.zstdio"
	}
	var deps strings.Builder
	for kind, list := range map[string][]string{"Requires": s.Requires, "Provides": s.Provides, "Conflicts": s.Conflicts} {
		for _, d := range list {
			fmt.Fprintf(&deps, "%s: %s\n", kind, d)
		}
	}
	spec := fmt.Sprintf(`Name: %s
Version: %s
Release: %s
Summary: pkginitrd test package
License: MIT
BuildArch: %s
AutoReqProv: no
%s
%%define _binary_payload %s
%%define __os_install_post %%{nil}
%%define _build_id_links none
%%define debug_package %%{nil}
%%description
pkginitrd test package.
%%install
cp -a %s/. %%{buildroot}/
%%files
%%defattr(-,root,root,-)
%s`, s.Name, s.Version, s.Release, s.Arch, deps.String(), s.Payload, stage, list.String())
	specFile := filepath.Join(top, s.Name+".spec")
	if err := os.WriteFile(specFile, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rpmbuild, "--define", "_topdir "+top, "--define", "_tmppath "+top+"/tmp", "-bb", specFile)
	cmd.Env = append(os.Environ(), "HOME="+top)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rpmbuild %s: %v\n%s", s.Name, err, out)
	}
	m, _ := filepath.Glob(filepath.Join(top, "RPMS", s.Arch, s.Name+"-*.rpm"))
	if len(m) != 1 {
		t.Fatalf("rpmbuild %s: want one rpm, got %v", s.Name, m)
	}
	return m[0]
}

func stageFile(t testing.TB, stage string, f File) {
	t.Helper()
	p := filepath.Join(stage, f.Path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	mode := f.Mode
	if mode == 0 {
		mode = 0o644
	}
	var err error
	switch {
	case f.Dir:
		err = os.MkdirAll(p, 0o755)
	case f.Link != "":
		err = os.Symlink(f.Link, p)
	case f.HardLink != "":
		err = os.Link(filepath.Join(stage, f.HardLink), p)
	case f.Src != "":
		var b []byte
		if b, err = os.ReadFile(f.Src); err == nil {
			err = os.WriteFile(p, b, mode)
		}
	default:
		err = os.WriteFile(p, f.Data, mode)
	}
	if err == nil && !f.Dir && f.Link == "" && f.HardLink == "" {
		err = os.Chmod(p, mode)
	}
	if err != nil {
		t.Fatalf("stage %s: %v", f.Path, err)
	}
}

// Key is a throw-away gpg signing key.
type Key struct {
	Home   string // GNUPGHOME holding the secret key
	FPR    string // fingerprint
	Public string // armored public key file
}

// NewKey generates a key without a passphrase.
func NewKey(t testing.TB, name string) Key {
	t.Helper()
	gpg := testenv.NeedTool(t, "gpg", "gnupg")
	home, err := os.MkdirTemp("", "testrpm-gpg-") // short: gpg-agent's socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	k := Key{Home: home, Public: filepath.Join(home, name+".asc")}
	run := func(args ...string) string {
		cmd := exec.Command(gpg, append([]string{"--batch", "--homedir", home}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %v: %v", args, err)
		}
		return string(out)
	}
	run("--passphrase", "", "--quick-gen-key", name+" <"+name+"@pkginitrd.test>", "rsa2048", "sign", "never")
	for _, line := range strings.Split(run("--with-colons", "--list-secret-keys"), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && k.FPR == "" {
			k.FPR = f[9]
		}
	}
	if err := os.WriteFile(k.Public, []byte(run("--armor", "--export", k.FPR)), 0o644); err != nil {
		t.Fatal(err)
	}
	return k
}

// Sign signs rpms in place with rpmsign (Debian's rpm defaults %__gpg to a
// gpg2 that does not exist).
func (k Key) Sign(t testing.TB, rpms ...string) {
	t.Helper()
	rpmsign := testenv.NeedTool(t, "rpmsign", "rpm")
	args := append([]string{"--addsign", "--define", "__gpg /usr/bin/gpg", "--define", "_gpg_name " + k.FPR}, rpms...)
	cmd := exec.Command(rpmsign, args...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+k.Home)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rpmsign: %v\n%s", err, out)
	}
}

// Repo copies rpms into a new directory, writes its metadata with
// createrepo_c and signs repomd.xml with k; it returns the directory.
func (k Key) Repo(t testing.TB, rpms ...string) string {
	t.Helper()
	createrepo := testenv.NeedTool(t, "createrepo_c", "createrepo-c")
	dir := t.TempDir()
	for _, r := range rpms {
		b, err := os.ReadFile(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(r)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(createrepo, "--quiet", dir).CombinedOutput(); err != nil {
		t.Fatalf("createrepo_c: %v\n%s", err, out)
	}
	repomd := filepath.Join(dir, "repodata", "repomd.xml")
	cmd := exec.Command("gpg", "--batch", "--homedir", k.Home, "--yes", "--armor", "--detach-sign", "--local-user", k.FPR, "--output", repomd+".asc", repomd)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sign repomd.xml: %v\n%s", err, out)
	}
	return dir
}
