// Package pacman is the pkginitrd backend for Arch Linux. The real pacman
// resolves and downloads into a private state per repository set and
// architecture under the cache directory (databases, keyring, package
// cache, an empty root), with package and database signatures required and
// checked against each repository's keyring. Not being root, it runs pacman
// in a user namespace (unshare --map-root-user).
package pacman

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pkginitrd/pkginitrd/backends"
	confd "github.com/pkginitrd/pkginitrd/conf.d"
)

// Options configure a Driver.
type Options struct {
	Logger       *slog.Logger                // nil discards logs
	Repositories map[string]confd.Repository // tried in confd.RepositoryNames order
	// HostConfig is a pacman.conf whose repositories are used, when it
	// declares any and no mirror is given (/etc/pacman.conf when building
	// for the host's own distribution; "" never).
	HostConfig string
	// HostCaches are package caches (/var/cache/pacman/pkg) pacman may take
	// packages from; pacman verifies them like downloads.
	HostCaches []string
	Pacman     string // pacman binary; "pacman" if empty
}

// Driver is the pacman backend.
type Driver struct {
	opts Options
	log  *slog.Logger
}

var _ backends.Backend = (*Driver)(nil)

// New returns a driver with opts' settings.
func New(opts Options) *Driver {
	if opts.Pacman == "" {
		opts.Pacman = "pacman"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Driver{opts: opts, log: log}
}

// Name returns "pacman".
func (d *Driver) Name() string { return "pacman" }

// state is the private pacman state of one repository set.
type state struct {
	dir, conf, db, gpg, cache, root, log string
	repos                                []Repo
}

// Fetch resolves req with pacman (-Syw: refresh the databases, download),
// lists the result (-Sp) and returns it minus req.Exclude, sorted by name.
// With req.Offline the databases are not refreshed.
func (d *Driver) Fetch(ctx context.Context, req backends.Request) ([]backends.Package, error) {
	if len(req.Packages) == 0 {
		return nil, nil
	}
	for _, p := range req.Packages {
		if p == "" || strings.HasPrefix(p, "-") || strings.ContainsAny(p, " \t\n") {
			return nil, fmt.Errorf("pacman: bad package name %q", p)
		}
	}
	pacman, err := exec.LookPath(d.opts.Pacman)
	if err != nil {
		return nil, fmt.Errorf("pacman backend: %w (on Debian and Ubuntu install pacman-package-manager, and archlinux-keyring for Arch's repositories)", err)
	}
	repos, err := d.repositories(req)
	if err != nil {
		return nil, err
	}
	st, err := newState(req.CacheDir, pacmanArch(req.Arch), repos)
	if err != nil {
		return nil, err
	}
	if err := d.keyring(ctx, st); err != nil {
		return nil, err
	}
	op := "-Syw"
	if req.Offline {
		op = "-Sw"
	}
	d.log.Info("pacman: resolving and downloading", "repositories", len(repos), "state", st.dir)
	if _, err := d.pacman(ctx, pacman, st, true, append([]string{op}, req.Packages...)...); err != nil {
		return nil, err
	}
	out, err := d.pacman(ctx, pacman, st, false, append([]string{"-Sp", "--print-format", "%n|%v|%r|%l"}, req.Packages...)...)
	if err != nil {
		return nil, err
	}
	pkgs, err := parseList(bytes.NewReader(out), append([]string{st.cache}, d.opts.HostCaches...))
	if err != nil {
		return nil, fmt.Errorf("pacman -Sp: %w", err)
	}
	return backends.Filter(pkgs, req.Exclude), nil
}

// repositories picks where packages come from: every configured
// repository served by req.Mirror; else the host's pacman.conf
// repositories; else the configured ones.
func (d *Driver) repositories(req backends.Request) ([]Repo, error) {
	conf := make([]Repo, 0, len(d.opts.Repositories))
	for _, name := range confd.RepositoryNames(d.opts.Repositories) {
		if r := d.opts.Repositories[name]; !r.Disabled {
			conf = append(conf, Repo{Name: name, Servers: []string{r.URL}, Keyring: r.Keyring})
		}
	}
	if req.Mirror != "" {
		for i := range conf {
			conf[i].Servers = []string{req.Mirror}
		}
	} else if d.opts.HostConfig != "" {
		host, err := readHostConf(d.opts.HostConfig)
		if err != nil {
			return nil, err
		}
		if len(host) > 0 {
			d.log.Info("pacman: using the host's repositories", "config", d.opts.HostConfig)
			for i := range host {
				host[i].Keyring = hostKeyring(host[i].Name, conf)
			}
			conf = host
		}
	}
	if len(conf) == 0 {
		return nil, errors.New("pacman: no repositories configured (distributions.<name>.repositories, or --mirror)")
	}
	for _, r := range conf {
		if r.Keyring == "" {
			return nil, fmt.Errorf("pacman: repository %s has no keyring: signatures are always checked", r.Name)
		}
	}
	return conf, nil
}

// hostKeyring is the keyring of the configured repository of that name,
// else of the first configured one (archlinux for Arch).
func hostKeyring(name string, conf []Repo) string {
	for _, r := range conf {
		if r.Name == name {
			return r.Keyring
		}
	}
	if len(conf) > 0 {
		return conf[0].Keyring
	}
	return ""
}

func readHostConf(p string) ([]Repo, error) {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pacman: %w", err)
	}
	defer f.Close()
	repos, err := ParseConf(f, func(inc string) (io.ReadCloser, error) { return os.Open(inc) })
	if err != nil {
		return nil, fmt.Errorf("pacman: %s: %w", p, err)
	}
	return repos, nil
}

// newState creates the private directories of repos under cacheDir.
func newState(cacheDir, arch string, repos []Repo) (*state, error) {
	if cacheDir == "" {
		return nil, errors.New("pacman: no cache directory")
	}
	dir := filepath.Join(cacheDir, "pacman", stateKey(arch, repos))
	st := &state{dir: dir, conf: filepath.Join(dir, "pacman.conf"), db: filepath.Join(dir, "db"), gpg: filepath.Join(dir, "gnupg"),
		cache: filepath.Join(dir, "pkg"), root: filepath.Join(dir, "root"), log: filepath.Join(dir, "pacman.log"), repos: repos}
	for _, d := range []string{st.db, st.cache, st.root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("pacman: %w", err)
		}
	}
	if err := os.WriteFile(st.conf, []byte(writeConf(arch, repos)), 0o644); err != nil {
		return nil, fmt.Errorf("pacman: %w", err)
	}
	return st, nil
}

// pacman runs pacman on st's private state and returns its standard
// output. asRoot runs it in a user namespace when not root (-Sw needs
// root; -Sp does not).
func (d *Driver) pacman(ctx context.Context, pacman string, st *state, asRoot bool, args ...string) ([]byte, error) {
	argv := []string{pacman, "--config", st.conf, "--root", st.root, "--dbpath", st.db, "--cachedir", st.cache}
	for _, c := range d.opts.HostCaches {
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			argv = append(argv, "--cachedir", c)
		}
	}
	argv = append(argv, "--gpgdir", st.gpg, "--logfile", st.log, "--noconfirm", "--noprogressbar")
	argv = append(argv, args...)
	return run(ctx, asRoot, argv...)
}

// run runs argv (in a user namespace when asRoot and not root) and returns
// its standard output; a failure carries pacman's messages.
func run(ctx context.Context, asRoot bool, argv ...string) ([]byte, error) {
	if asRoot && os.Geteuid() != 0 {
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			return nil, fmt.Errorf("%s needs root or a user namespace: %w (util-linux)", filepath.Base(argv[0]), err)
		}
		argv = append([]string{unshare, "--map-root-user"}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String() + "\n" + lastLines(out, 5))
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, msg)
	}
	return out, nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// parseList reads "name|version|repository|location" lines (pacman -Sp
// --print-format '%n|%v|%r|%l'); a location is a URL or the cached file.
// Each package's file must be in one of caches.
func parseList(r io.Reader, caches []string) ([]backends.Package, error) {
	var pkgs []backends.Package
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Split(line, "|")
		if len(f) != 4 {
			return nil, fmt.Errorf("unexpected line %q", line)
		}
		file := filepath.Base(f[3])
		p := backends.Package{Name: f[0], Version: f[1], Repository: f[2], Arch: fileArch(file)}
		for _, c := range caches {
			if fi, err := os.Stat(filepath.Join(c, file)); err == nil && fi.Mode().IsRegular() {
				p.Path = filepath.Join(c, file)
				break
			}
		}
		if p.Path == "" {
			return nil, fmt.Errorf("%s %s: %s is in no package cache", p.Name, p.Version, file)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, sc.Err()
}

// fileArch is the architecture field of a package file name
// (name-pkgver-pkgrel-arch.pkg.tar.zst).
func fileArch(file string) string {
	base, _, _ := strings.Cut(file, ".pkg.tar")
	return base[strings.LastIndex(base, "-")+1:]
}
