package apt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkginitrd/pkginitrd/backends"
	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

// localRepo is a signed apt repository built by the test: the package
// pkginitrd-probe 1.0 in suite "stable" and 1.1 in "stable-updates".
type localRepo struct {
	dir     string // the repository (dists/, pool/)
	keyring string // the public key its Release files are signed with
	decoy   string // another key, which signed nothing
}

// newLocalRepo builds the repository with dpkg-deb, dpkg-scanpackages and a
// throwaway gpg key.
func newLocalRepo(t *testing.T) localRepo {
	t.Helper()
	dpkgDeb := testenv.NeedTool(t, "dpkg-deb", "dpkg")
	scan := testenv.NeedTool(t, "dpkg-scanpackages", "dpkg-dev")
	gpg := testenv.NeedTool(t, "gpg", "gpg")
	testenv.NeedTool(t, "apt-get", "apt")
	base := t.TempDir()
	r := localRepo{dir: filepath.Join(base, "repo"), keyring: filepath.Join(base, "key.gpg"), decoy: filepath.Join(base, "decoy.gpg")}
	suites := map[string]string{"stable": "1.0", "stable-updates": "1.1"}
	for suite, version := range suites {
		pkg := filepath.Join(base, "pkg-"+version)
		files := map[string]string{
			"DEBIAN/control":                    fmt.Sprintf("Package: pkginitrd-probe\nVersion: %s\nArchitecture: all\nMaintainer: pkginitrd tests <tests@invalid>\nDescription: test package\n", version),
			"usr/share/pkginitrd-probe/version": version + "\n",
		}
		writeFiles(t, pkg, files)
		pool := filepath.Join(r.dir, "pool", suite)
		if err := os.MkdirAll(pool, 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, "", nil, dpkgDeb, "--root-owner-group", "-Zgzip", "--build", pkg, filepath.Join(pool, "pkginitrd-probe_"+version+"_all.deb"))
		packages := run(t, r.dir, nil, scan, "pool/"+suite, "/dev/null")
		index := filepath.Join("main", "binary-amd64", "Packages")
		writeFiles(t, filepath.Join(r.dir, "dists", suite), map[string]string{index: packages})
		sum := sha256.Sum256([]byte(packages))
		release := fmt.Sprintf("Origin: pkginitrd-test\nSuite: %s\nCodename: %s\nDate: %s\nArchitectures: amd64\nComponents: main\nSHA256:\n %s %d %s\n",
			suite, suite, time.Now().UTC().Format(time.RFC1123), hex.EncodeToString(sum[:]), len(packages), index)
		writeFiles(t, filepath.Join(r.dir, "dists", suite), map[string]string{"Release": release})
	}
	// A throwaway key pair signs the Release files (InRelease).
	home := filepath.Join(base, "gnupg")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	env := []string{"GNUPGHOME=" + home}
	t.Cleanup(func() { _ = exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run() })
	for _, uid := range []string{"pkginitrd test <test@invalid>", "decoy <decoy@invalid>"} {
		run(t, "", env, gpg, "--batch", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
	}
	if err := os.WriteFile(r.keyring, []byte(run(t, "", env, gpg, "--export", "test@invalid")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.decoy, []byte(run(t, "", env, gpg, "--export", "decoy@invalid")), 0o644); err != nil {
		t.Fatal(err)
	}
	for suite := range suites {
		d := filepath.Join(r.dir, "dists", suite)
		run(t, "", env, gpg, "--batch", "--yes", "--local-user", "test@invalid", "--clearsign", "-o", filepath.Join(d, "InRelease"), filepath.Join(d, "Release"))
	}
	return r
}

func run(t *testing.T, dir string, env []string, prog string, args ...string) string {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// TestFetchNewerSuite shows that a repository's second suite is used: the
// real apt-get, run by the backend on the sources it is given, picks the
// newer pkginitrd-probe from "stable-updates" over the one in "stable", and
// says where it came from. (Before repositories had suites, the state's
// one-line sources.list named one suite, so the update was never seen.)
func TestFetchNewerSuite(t *testing.T) {
	repo := newLocalRepo(t)
	url := "copy:" + repo.dir
	for _, tc := range []struct {
		name           string
		suites         []string
		signedBy       []string
		version, suite string
	}{
		{"release only", []string{"stable"}, []string{repo.keyring}, "1.0", "stable"},
		{"with updates", []string{"stable", "stable-updates"}, []string{repo.decoy, repo.keyring}, "1.1", "stable-updates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			req := backends.Request{
				Packages: []string{"pkginitrd-probe"}, Release: "stable", Arch: "amd64", CacheDir: t.TempDir(),
				Repositories: []backends.Repository{{URL: url, Suites: tc.suites, Components: []string{"main"}, SignedBy: tc.signedBy}},
			}
			pkgs, err := newDriver(t, rec, Options{}).Fetch(context.Background(), req)
			if err != nil {
				t.Fatalf("Fetch = %v", err)
			}
			checkPackages(t, "Fetch(pkginitrd-probe)", pkgs, "pkginitrd-probe")
			p := find(pkgs, "pkginitrd-probe")
			if p == nil || p.Version != tc.version || p.Repository != url || p.Suite != tc.suite {
				t.Errorf("Fetch(suites %v) = %+v, want version %s from %s %s", tc.suites, p, tc.version, url, tc.suite)
			}
		})
	}
	// Signed by the decoy only: apt refuses the repository.
	req := backends.Request{
		Packages: []string{"pkginitrd-probe"}, Release: "stable", Arch: "amd64", CacheDir: t.TempDir(),
		Repositories: []backends.Repository{{URL: url, Suites: []string{"stable"}, Components: []string{"main"}, SignedBy: []string{repo.decoy}}},
	}
	if _, err := newDriver(t, &recorder{}, Options{}).Fetch(context.Background(), req); err == nil || !strings.Contains(err.Error(), "update package lists") {
		t.Errorf("Fetch from a repository signed by another key = %v, want apt-get update's signature error", err)
	}
}
