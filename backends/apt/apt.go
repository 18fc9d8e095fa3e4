// Package apt is the pkginitrd backend for Debian and its derivatives. It
// resolves and downloads packages with the real apt-get, run on a private
// state (configuration, lists, empty dpkg status, archives) per release,
// architecture and sources under the cache directory, and remembers each
// resolution so that a warm build runs no apt command at all.
package apt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pkginitrd/pkginitrd/backends"
)

// DefaultMaxListAge is Options.MaxListAge's default.
const DefaultMaxListAge = 24 * time.Hour

// Options configure a Driver. The zero value is usable.
type Options struct {
	Logger     *slog.Logger  // nil discards logs
	MaxListAge time.Duration // refresh the package lists when older; DefaultMaxListAge if 0
	AptGet     string        // apt-get binary; "apt-get" if empty (apt-cache is taken from beside it)
	// HostArchives are directories of .deb files (such as
	// /var/cache/apt/archives) whose files are reused instead of downloaded
	// when name, size and SHA256 match.
	HostArchives []string
	// Run runs every apt command; nil means (*exec.Cmd).Run. Tests wrap it
	// to observe or count the commands.
	Run func(*exec.Cmd) error
}

// Driver is the apt backend.
type Driver struct {
	log          *slog.Logger
	maxListAge   time.Duration
	aptGet       string
	hostArchives []string
	run          func(*exec.Cmd) error
}

var _ backends.Backend = (*Driver)(nil)

// New returns a driver with opts' settings, defaults filled in.
func New(opts Options) *Driver {
	d := &Driver{
		log:          opts.Logger,
		maxListAge:   opts.MaxListAge,
		aptGet:       opts.AptGet,
		hostArchives: opts.HostArchives,
		run:          opts.Run,
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.maxListAge == 0 {
		d.maxListAge = DefaultMaxListAge
	}
	if d.aptGet == "" {
		d.aptGet = "apt-get"
	}
	if d.run == nil {
		d.run = (*exec.Cmd).Run
	}
	return d
}

// Name returns "apt".
func (d *Driver) Name() string { return "apt" }

// Fetch resolves req with apt-get on the private state of req's release,
// architecture and repositories, downloads the archives that are not cached yet,
// and returns the packages minus req.Exclude, sorted by name.
//
// When a cached resolution of the same request exists for the current
// package lists and all its archives are intact, Fetch runs no command. The
// lists are refreshed with apt-get update when missing or older than
// MaxListAge, never when req.Offline.
func (d *Driver) Fetch(ctx context.Context, req backends.Request) ([]backends.Package, error) {
	if len(req.Packages) == 0 {
		return nil, nil
	}
	for _, p := range req.Packages {
		if p == "" || strings.HasPrefix(p, "-") || strings.ContainsAny(p, " \t\n") {
			return nil, fmt.Errorf("apt: bad package name %q", p)
		}
	}
	st, err := stateFor(req)
	if err != nil {
		return nil, fmt.Errorf("apt: %w", err)
	}
	key := filepath.Join(st.resolved(), requestKey(req)+".json")
	if pkgs := d.warm(st, key, req); pkgs != nil {
		return pkgs, nil
	}
	pkgs, err := d.cold(ctx, st, key, req)
	if err != nil {
		return nil, fmt.Errorf("apt: %s/%s from %s: %w", req.Release, req.Arch, repoURLs(req.Repositories), err)
	}
	return pkgs, nil
}

// warm returns the cached resolution's packages when the lists are fresh
// (or the request is offline), unchanged since the resolution, and every
// archive is intact; otherwise nil. It runs no command.
func (d *Driver) warm(st state, key string, req backends.Request) []backends.Package {
	if !req.Offline && !d.fresh(st) {
		return nil
	}
	id, err := listsID(st.lists())
	if err != nil {
		return nil
	}
	res, err := readResolution(key)
	if err != nil || res.Lists != id {
		return nil
	}
	changed := false
	for i, e := range res.Archives {
		mt, err := verify(filepath.Join(st.archives(), e.File), e.archive, e.MTimeNS)
		if err != nil {
			d.log.Debug("cached archive needs fetching", "package", e.Name, "err", err)
			return nil
		}
		changed = changed || mt != e.MTimeNS
		res.Archives[i].MTimeNS = mt
	}
	if changed {
		if err := writeResolution(key, res); err != nil {
			d.log.Warn("cannot update resolution cache", "file", key, "err", err)
		}
	}
	return packages(st, res.Archives)
}

func packages(st state, ents []entry) []backends.Package {
	out := make([]backends.Package, 0, len(ents))
	for _, e := range ents {
		out = append(out, backends.Package{Name: e.Name, Version: e.Version, Arch: e.Arch, Path: filepath.Join(st.archives(), e.File), Repository: e.Repository, Suite: e.Suite, SHA256: e.SHA256, URL: e.URI})
	}
	return backends.Filter(out, nil)
}

// fresh reports whether the state's lists were updated less than
// MaxListAge ago.
func (d *Driver) fresh(st state) bool {
	fi, err := os.Stat(st.stamp())
	return err == nil && time.Since(fi.ModTime()) < d.maxListAge
}

// cold resolves and downloads under the state's lock.
func (d *Driver) cold(ctx context.Context, st state, key string, req backends.Request) ([]backends.Package, error) {
	if err := os.MkdirAll(st.dir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := d.lock(ctx, st)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := st.setup(req); err != nil {
		return nil, fmt.Errorf("set up apt state %s: %w", st.dir, err)
	}
	if err := d.update(ctx, st, req); err != nil {
		return nil, err
	}
	// Another run may have finished the same request while we waited for
	// the lock, or the refresh may have left the lists as they were.
	if pkgs := d.warm(st, key, req); pkgs != nil {
		return pkgs, nil
	}
	id, err := listsID(st.lists())
	if err != nil {
		return nil, err
	}
	all, err := d.resolve(ctx, st, req)
	if err != nil {
		return nil, err
	}
	if err := d.origins(ctx, st, req.Repositories, all); err != nil {
		return nil, err
	}
	var ents []entry
	for _, a := range all {
		if !slices.Contains(req.Exclude, a.Name) {
			ents = append(ents, entry{archive: a})
		}
	}
	if err := d.download(ctx, st, ents, req.Offline); err != nil {
		return nil, err
	}
	res := &resolution{Lists: id, Archives: ents}
	if err := writeResolution(key, res); err != nil {
		return nil, fmt.Errorf("write resolution cache: %w", err)
	}
	return packages(st, ents), nil
}

// update runs apt-get update when the lists are missing or stale. Offline,
// missing lists are an error and stale ones are used as they are; online,
// a failed refresh of existing lists is logged and the old lists are used.
func (d *Driver) update(ctx context.Context, st state, req backends.Request) error {
	_, listErr := listsID(st.lists())
	if listErr == nil && (req.Offline || d.fresh(st)) {
		return nil
	}
	if req.Offline {
		return fmt.Errorf("offline, and no package lists for %s/%s are cached in %s (run once online first)", req.Release, req.Arch, st.dir)
	}
	d.log.Info("updating package lists", "release", req.Release, "arch", req.Arch, "repositories", repoURLs(req.Repositories))
	if _, err := d.apt(ctx, st, "", "update", "-q"); err != nil {
		if listErr == nil && ctx.Err() == nil {
			d.log.Warn("refreshing package lists failed; using the old ones", "release", req.Release, "err", err)
			return nil
		}
		return fmt.Errorf("update package lists: %w", err)
	}
	if _, err := listsID(st.lists()); err != nil {
		return fmt.Errorf("apt-get update left %w", err)
	}
	return writeAtomic(st.stamp(), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"))
}

// resolve asks apt which archives installing req.Packages into an empty
// root needs (without recommends), with their sizes and SHA256 sums.
func (d *Driver) resolve(ctx context.Context, st state, req backends.Request) ([]archive, error) {
	pkgs := slices.Sorted(slices.Values(req.Packages))
	args := append([]string{"install", "--print-uris", "-q", "-o", "Acquire::ForceHash=SHA256"}, pkgs...)
	out, err := d.apt(ctx, st, "", args...)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", strings.Join(pkgs, " "), err)
	}
	all, err := parseURIs(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", strings.Join(pkgs, " "), err)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("resolve %s: apt-get printed no archives", strings.Join(pkgs, " "))
	}
	return all, nil
}

// download makes every archive of ents present and verified in the state's
// archives directory: kept if intact, copied from a host archive directory,
// or downloaded with apt-get download (unless offline). apt writes into a
// temporary directory and only verified files are renamed into place, so
// an interrupted download leaves nothing a later run trusts.
func (d *Driver) download(ctx context.Context, st state, ents []entry, offline bool) error {
	var missing []int
	for i := range ents {
		e := &ents[i]
		dst := filepath.Join(st.archives(), e.File)
		mt, err := verify(dst, e.archive, 0)
		if err == nil {
			e.MTimeNS = mt
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			d.log.Warn("cached archive is damaged; fetching it again", "package", e.Name, "file", dst, "err", err)
			os.Remove(dst)
		}
		if d.fromHost(e, dst) {
			continue
		}
		missing = append(missing, i)
	}
	if len(missing) == 0 {
		return nil
	}
	var specs, names []string
	for _, i := range missing {
		specs, names = append(specs, ents[i].spec()), append(names, ents[i].Name)
	}
	if offline {
		return fmt.Errorf("offline, and archives of %s are not cached in %s", strings.Join(names, " "), st.archives())
	}
	tmp, err := os.MkdirTemp(st.dir, "download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	sandboxOwner(tmp)
	d.log.Info("downloading packages", "packages", names)
	if _, err := d.apt(ctx, st, tmp, append([]string{"download", "-q"}, specs...)...); err != nil {
		return fmt.Errorf("download %s: %w", strings.Join(names, " "), err)
	}
	for _, i := range missing {
		e := &ents[i]
		src, dst := filepath.Join(tmp, e.File), filepath.Join(st.archives(), e.File)
		if _, err := verify(src, e.archive, 0); err != nil {
			return fmt.Errorf("download %s: %s: %w", e.Name, e.File, err)
		}
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("download %s: %w", e.Name, err)
		}
		mt, err := verify(dst, e.archive, 0)
		if err != nil {
			return fmt.Errorf("download %s: %w", e.Name, err)
		}
		e.MTimeNS = mt
	}
	return nil
}

// sandboxOwner gives dir to apt's unprivileged download user (_apt) when
// running as root, as apt does with its own partial directories, so the
// download runs sandboxed. On failure apt downloads as root and says so.
func sandboxOwner(dir string) {
	if os.Geteuid() != 0 {
		return
	}
	if uid, ok := passwdUID("/etc/passwd", "_apt"); ok {
		_ = os.Chown(dir, uid, -1) // best effort: without it apt warns and downloads as root
	}
}

// passwdUID looks name up in a passwd file. (Not os/user: with cgo enabled
// it links libc, and pkginitrd must stay a static binary to serve as /init.)
func passwdUID(file, name string) (int, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 2 && f[0] == name {
			uid, err := strconv.Atoi(f[2])
			return uid, err == nil
		}
	}
	return 0, false
}

// fromHost copies e's archive from a host archive directory to dst when one
// there has the right size and hash.
func (d *Driver) fromHost(e *entry, dst string) bool {
	for _, dir := range d.hostArchives {
		src := filepath.Join(dir, e.File)
		if fi, err := os.Stat(src); err != nil || fi.Size() != e.Size {
			continue
		}
		if err := copyVerified(src, dst, e.archive); err != nil {
			d.log.Debug("host archive not usable", "file", src, "err", err)
			continue
		}
		mt, err := verify(dst, e.archive, 0)
		if err != nil {
			continue
		}
		e.MTimeNS = mt
		d.log.Debug("reused host archive", "file", src)
		return true
	}
	return false
}

// lock takes the state's exclusive lock, waiting for another pkginitrd
// run on the same state until ctx ends.
func (d *Driver) lock(ctx context.Context, st state) (unlock func(), err error) {
	f, err := os.OpenFile(st.lock(), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for waited := false; ; waited = true {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", st.lock(), err)
		}
		if !waited {
			d.log.Info("waiting for another pkginitrd using the same apt state", "lock", st.lock())
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Error is a failed apt command: the command line to reproduce it, the
// packages apt complained about, and apt's own error lines ("E: …" and the
// unmet-dependencies explanation).
type Error struct {
	Command  string
	Packages []string
	Messages []string
	Err      error // from exec, e.g. *exec.ExitError
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v", e.Command, e.Err)
	if len(e.Packages) > 0 {
		fmt.Fprintf(&b, " (package %s)", strings.Join(e.Packages, ", "))
	}
	for _, m := range e.Messages {
		b.WriteString("\n" + m)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// apt runs apt-get with args on state st in dir and returns its stdout. The
// environment points APT_CONFIG at the state's configuration and forces
// untranslated messages.
func (d *Driver) apt(ctx context.Context, st state, dir string, args ...string) ([]byte, error) {
	return d.run1(ctx, st, dir, d.aptGet, args...)
}

// run1 runs apt program prog (apt-get, apt-cache) as apt does.
func (d *Driver) run1(ctx context.Context, st state, dir, prog string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = dir
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "APT_CONFIG=") || strings.HasPrefix(kv, "LC_ALL=") || strings.HasPrefix(kv, "LANGUAGE=")
	}), "APT_CONFIG="+st.conf(), "LC_ALL=C.UTF-8")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := d.run(cmd)
	command := "APT_CONFIG=" + st.conf() + " " + prog + " " + strings.Join(args, " ")
	d.log.Debug("ran apt", "cmd", command, "duration", time.Since(start), "err", err)
	for line := range bytes.Lines(stderr.Bytes()) {
		if l := strings.TrimSpace(string(line)); strings.HasPrefix(l, "W: ") {
			level := slog.LevelWarn
			if strings.Contains(l, "unsandboxed") {
				level = slog.LevelDebug // root building in a directory _apt cannot enter
			}
			d.log.Log(ctx, level, "apt: "+strings.TrimPrefix(l, "W: "), "cmd", args[0])
		}
	}
	if err != nil {
		msgs := problems(stdout.Bytes(), stderr.Bytes())
		if len(msgs) == 0 {
			msgs = lastLines(stderr.String(), 5)
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return nil, &Error{Command: command, Packages: problemPackages(msgs), Messages: msgs, Err: err}
	}
	return stdout.Bytes(), nil
}

func lastLines(s string, n int) []string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	return lines
}

// origins records in each archive the repository URL and suite apt took it
// from: the source apt-cache policy lists for its version whose URL the
// archive's URI starts with, named as in repos.
func (d *Driver) origins(ctx context.Context, st state, repos []backends.Repository, all []archive) error {
	var names []string
	for _, a := range all {
		if !slices.Contains(names, a.Name) {
			names = append(names, a.Name)
		}
	}
	out, err := d.run1(ctx, st, "", d.aptCache(), append([]string{"policy", "-q"}, names...)...)
	if err != nil {
		return fmt.Errorf("find the repositories of the packages: %w", err)
	}
	pol, err := parsePolicy(bytes.NewReader(out))
	if err != nil {
		return fmt.Errorf("apt-cache policy: %w", err)
	}
	for i := range all {
		a := &all[i]
		srcs := pol[a.Name][a.Version]
		if len(srcs) == 0 {
			d.log.Warn("apt-cache policy does not say where a package comes from", "package", a.Name, "version", a.Version)
			continue
		}
		o := srcs[0]
		for _, s := range srcs {
			if base := strings.TrimSuffix(s.URL, "/") + "/"; strings.HasPrefix(a.URI, base) {
				o = s
				break
			}
		}
		a.Repository, a.Suite = o.URL, o.Dist
		for _, r := range repos {
			if !sameURL(r.URL, o.URL) {
				continue
			}
			a.Repository = r.URL
			for _, s := range r.Suites {
				if o.Dist == s || strings.HasPrefix(o.Dist, s+"/") || s == "./" && o.Dist == "" {
					a.Suite = s
				}
			}
		}
	}
	return nil
}

// aptCache is the apt-cache binary beside apt-get.
func (d *Driver) aptCache() string {
	if strings.Contains(d.aptGet, "/") {
		return filepath.Join(filepath.Dir(d.aptGet), "apt-cache")
	}
	return "apt-cache"
}

// repoURLs lists the repositories' URLs for messages.
func repoURLs(repos []backends.Repository) string {
	urls := make([]string, 0, len(repos))
	for _, r := range repos {
		if !slices.Contains(urls, r.URL) {
			urls = append(urls, r.URL)
		}
	}
	return strings.Join(urls, " ")
}
