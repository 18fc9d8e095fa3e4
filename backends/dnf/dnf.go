// Package dnf is the Fedora-family backend: the real dnf resolves and
// downloads into private directories (an empty installroot, its own cache
// and configuration; signatures of packages and metadata checked with the
// repositories' keys), and the Go unpacker extracts the RPMs.
package dnf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/pkginitrd/pkginitrd/backends"
	"github.com/pkginitrd/pkginitrd/backends/unpack"
	confd "github.com/pkginitrd/pkginitrd/conf.d"
)

// Options configures the backend.
type Options struct {
	Logger       *slog.Logger
	Keyring      string                      // key file for repositories that name none, and for --mirror
	Repositories map[string]confd.Repository // used unless a mirror is given or the build is for the host's release
	HostRoot     string                      // where the host's /etc/yum.repos.d and /var/cache/dnf are ("" = /)
	DNF          string                      // dnf binary ("" = dnf in PATH)
}

// Backend drives dnf.
type Backend struct{ opts Options }

// New returns the dnf backend.
func New(opts Options) *Backend {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HostRoot == "" {
		opts.HostRoot = "/"
	}
	if opts.DNF == "" {
		opts.DNF = "dnf"
	}
	return &Backend{opts: opts}
}

// Name returns "dnf".
func (b *Backend) Name() string { return "dnf" }

// Fetch resolves req.Packages with dnf in an empty installroot, downloads
// them and their dependencies, and returns them read from the RPMs' headers.
func (b *Backend) Fetch(ctx context.Context, req backends.Request) ([]backends.Package, error) {
	dnf, err := exec.LookPath(b.opts.DNF)
	if err != nil {
		return nil, fmt.Errorf("dnf not found: install the package dnf (Debian: apt-get install dnf): %w", err)
	}
	basearch := baseArch(req.Arch)
	w, err := b.prepare(req)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(w.tmp)
	defer killAgents(w.cache)
	args := []string{dnf, "-y", "--noplugins", "--config=" + w.conf, "--installroot=" + w.root,
		"--releasever=" + releasever(req.Release), "--setopt=cachedir=" + w.cache,
		"--downloadonly", "--downloaddir=" + w.downloads}
	if basearch != baseArch(runtime.GOARCH) {
		args = append(args, "--forcearch="+basearch)
	}
	if req.Offline {
		args = append(args, "--cacheonly")
	}
	args = append(args, "install")
	args = append(args, req.Packages...)
	if os.Geteuid() != 0 {
		// dnf refuses to run as a user even to download; a user namespace
		// where we are root is enough.
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			return nil, fmt.Errorf("dnf needs root or a user namespace: unshare not found (Debian: apt-get install util-linux): %w", err)
		}
		args = append([]string{unshare, "--map-root-user"}, args...)
	}
	b.opts.Logger.Debug("running dnf", "args", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "HOME="+w.home, "TMPDIR="+w.tmp, "LC_ALL=C.UTF-8")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Trust the exit status, never the download directory: dnf leaves
	// packages that failed the signature check there.
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("dnf install %s (release %s): %w\n%s", strings.Join(req.Packages, " "), req.Release, err, tail(stdout.String()+stderr.String(), 20))
	}
	pkgs, err := w.collect(repositoryColumn(stdout.String()))
	if err != nil {
		return nil, err
	}
	return backends.Filter(pkgs, req.Exclude), nil
}

// work holds the directories of one dnf run.
type work struct {
	conf, root, home, tmp, downloads string // private to the run
	cache, store                     string // kept: dnf's metadata cache, the downloaded RPMs
}

// prepare lays out the private directories and writes dnf's configuration.
func (b *Backend) prepare(req backends.Request) (*work, error) {
	if req.CacheDir == "" {
		return nil, errors.New("dnf: no cache directory")
	}
	base := filepath.Join(req.CacheDir, "dnf")
	w := &work{cache: filepath.Join(base, "cache"), store: filepath.Join(base, "packages")}
	for _, d := range []string{w.cache, w.store} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("dnf: %w", err)
		}
	}
	tmp, err := os.MkdirTemp(base, "run-")
	if err != nil {
		return nil, fmt.Errorf("dnf: %w", err)
	}
	w.tmp = tmp
	w.conf, w.root, w.home, w.downloads = filepath.Join(tmp, "dnf.conf"), filepath.Join(tmp, "root"), filepath.Join(tmp, "home"), filepath.Join(tmp, "downloads")
	for _, d := range []string{w.root, w.home, w.downloads} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("dnf: %w", err)
		}
	}
	// Debian's rpm keeps its database in $HOME; keep it in the installroot.
	if err := os.WriteFile(filepath.Join(w.home, ".rpmmacros"), []byte("%_dbpath /var/lib/rpm\n"), 0o644); err != nil {
		return nil, fmt.Errorf("dnf: %w", err)
	}
	host := req.HostRelease && req.Mirror == ""
	if host {
		b.opts.Logger.Info("building for the host's own release: using its repositories and package cache")
		if err := seedCache(filepath.Join(b.opts.HostRoot, "var/cache/dnf"), w.cache); err != nil {
			b.opts.Logger.Warn("the host's dnf cache could not be reused", "err", err)
		}
	}
	conf := b.config(req, host, w.cache)
	if err := os.WriteFile(w.conf, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("dnf: %w", err)
	}
	return w, nil
}

// config renders dnf.conf: signatures checked, no weak dependencies, no
// documentation, and the repositories of the build.
func (b *Backend) config(req backends.Request, host bool, cache string) string {
	var s strings.Builder
	reposdir := ""
	if host {
		reposdir = filepath.Join(b.opts.HostRoot, "etc/yum.repos.d")
	}
	fmt.Fprintf(&s, "[main]\nreposdir=%s\ncachedir=%s\nkeepcache=1\ngpgcheck=1\nrepo_gpgcheck=1\ninstall_weak_deps=False\ntsflags=nodocs\n", reposdir, cache)
	repos := b.opts.Repositories
	if req.Mirror != "" {
		repos = map[string]confd.Repository{"mirror": {URL: req.Mirror}}
	} else if host {
		repos = nil
	}
	for _, name := range slices.Sorted(maps.Keys(repos)) {
		r := repos[name]
		if r.Disabled {
			continue
		}
		var keys []string
		if r.Keyring != "" {
			keys = append(keys, r.Keyring)
		}
		if len(keys) == 0 && b.opts.Keyring != "" {
			keys = []string{b.opts.Keyring}
		}
		for i, k := range keys {
			if strings.HasPrefix(k, "/") {
				keys[i] = "file://" + k
			}
		}
		fmt.Fprintf(&s, "\n[%s]\nname=%s\nenabled=1\ngpgcheck=1\ngpgkey=%s\n", name, name, strings.Join(keys, " "))
		if r.URL != "" {
			fmt.Fprintf(&s, "baseurl=%s\n", r.URL)
		}
		if r.Metalink != "" {
			fmt.Fprintf(&s, "metalink=%s\n", r.Metalink)
		}
		if r.UnsignedMetadata {
			s.WriteString("repo_gpgcheck=0\n")
		} else {
			s.WriteString("repo_gpgcheck=1\n")
		}
	}
	return s.String()
}

// collect reads the downloaded RPMs' headers and moves them into the store.
func (w *work) collect(repoOf map[string]string) ([]backends.Package, error) {
	files, err := filepath.Glob(filepath.Join(w.downloads, "*.rpm"))
	if err != nil {
		return nil, fmt.Errorf("dnf: %w", err)
	}
	pkgs := make([]backends.Package, 0, len(files))
	for _, f := range files {
		p, err := unpack.ReadRPM(f)
		if err != nil {
			return nil, fmt.Errorf("dnf downloaded %s: %w", filepath.Base(f), err)
		}
		dst := filepath.Join(w.store, filepath.Base(f))
		if err := os.Rename(f, dst); err != nil {
			return nil, fmt.Errorf("dnf: %w", err)
		}
		pkgs = append(pkgs, backends.Package{Name: p.Name, Version: p.EVR(), Arch: p.Arch, Path: dst, Repository: repoOf[p.Name+"."+p.Arch]})
	}
	return pkgs, nil
}

// repositoryColumn reads the transaction table dnf prints (Package, Arch,
// Version, Repository, Size) into "name.arch" → repository. Rows dnf wraps
// are left out: the repository is informational.
func repositoryColumn(out string) map[string]string {
	m := map[string]string{}
	in := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "Package" && slices.Contains(f, "Repository"):
			in = true
		case in && strings.HasPrefix(line, "Transaction Summary"):
			in = false
		case in && strings.HasPrefix(line, " ") && (len(f) == 5 || len(f) == 6):
			m[f[0]+"."+f[1]] = f[3]
		}
	}
	return m
}

// seedCache links (or copies) the RPMs of the host's dnf cache into the
// private one, at the same place (<repo>-<hash>/packages/): dnf reuses a
// cached package only after checking it against the repository's checksum,
// and gpgcheck verifies its signature, so nothing is trusted blindly.
func seedCache(hostCache, cache string) error {
	rpms, err := filepath.Glob(filepath.Join(hostCache, "*", "packages", "*.rpm"))
	if err != nil {
		return err
	}
	for _, src := range rpms {
		rel, _ := filepath.Rel(hostCache, src)
		dst := filepath.Join(cache, rel)
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if os.Link(src, dst) == nil {
			continue
		}
		if err := copyFile(src, dst); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(dst), ".seed-")
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(out.Name(), dst)
	}
	if err != nil {
		os.Remove(out.Name())
	}
	return err
}

// killAgents stops the gpg-agent dnf leaves running per repository keyring.
func killAgents(cache string) {
	_ = filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "pubring" {
			_ = exec.Command("gpgconf", "--homedir", p, "--kill", "all").Run()
			return filepath.SkipDir
		}
		return nil
	})
}

// baseArch maps pkginitrd's (Debian's) architecture names to dnf's.
func baseArch(arch string) string {
	switch arch {
	case "amd64", "":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "ppc64el", "ppc64le":
		return "ppc64le"
	}
	return arch
}

// releasever is dnf's $releasever for a release: its major number (Alma's
// and Rocky's VERSION_ID 9.5 → 9; Fedora's 41 stays).
func releasever(release string) string {
	major, _, _ := strings.Cut(release, ".")
	return major
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
