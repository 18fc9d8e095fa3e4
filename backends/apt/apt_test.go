package apt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkginitrd/pkginitrd/backends"
	"github.com/pkginitrd/pkginitrd/internal/testdeb"
	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

// These tests use the real apt-get against deb.debian.org. Their apt state
// lives in the shared test cache, so lists are downloaded once a day, not
// once per run; each test removes the cached resolutions it wants to see
// made again.

const (
	mirror        = "http://deb.debian.org/debian"
	debianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
)

// debian is the repository list of one Debian release's main suite only.
func debian(release, keyring string) []backends.Repository {
	return []backends.Repository{{URL: mirror, Suites: []string{release}, Components: []string{"main"}, SignedBy: []string{keyring}}}
}

// recorder runs commands and remembers their apt-get subcommands.
type recorder struct {
	mu   sync.Mutex
	cmds []string
}

func (r *recorder) run(cmd *exec.Cmd) error {
	r.mu.Lock()
	r.cmds = append(r.cmds, strings.Join(cmd.Args[1:], " "))
	r.mu.Unlock()
	return cmd.Run()
}

// count returns how many recorded commands had subcommand sub ("" for all).
func (r *recorder) count(sub string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.cmds {
		if sub == "" || strings.HasPrefix(c, sub+" ") {
			n++
		}
	}
	return n
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.cmds = nil
	r.mu.Unlock()
}

func newDriver(t *testing.T, rec *recorder, opts Options) *Driver {
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Run = rec.run
	return New(opts)
}

func sharedCache(t *testing.T) string {
	return filepath.Join(testdeb.CacheDir(t), "apt-backend")
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// checkPackages verifies pkgs against the archives themselves (dpkg-deb
// --field) and that they are sorted and include want.
func checkPackages(t *testing.T, label string, pkgs []backends.Package, want ...string) {
	t.Helper()
	var names []string
	for _, p := range pkgs {
		names = append(names, p.Name)
		out, err := exec.Command("dpkg-deb", "--field", p.Path, "Package", "Version", "Architecture").Output()
		if err != nil {
			t.Errorf("%s: dpkg-deb --field %s: %v", label, p.Path, err)
			continue
		}
		got := string(out)
		wantFields := "Package: " + p.Name + "\nVersion: " + p.Version + "\nArchitecture: " + p.Arch + "\n"
		if got != wantFields {
			t.Errorf("%s: %s has fields %q, want %q", label, p.Path, got, wantFields)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("%s: packages %v are not sorted by name", label, names)
	}
	for _, w := range want {
		if !slices.Contains(names, w) {
			t.Errorf("%s: packages %v lack %s", label, names, w)
		}
	}
}

func find(pkgs []backends.Package, name string) *backends.Package {
	for i := range pkgs {
		if pkgs[i].Name == name {
			return &pkgs[i]
		}
	}
	return nil
}

func TestFetch(t *testing.T) {
	libc := map[string]backends.Package{}
	for _, release := range []string{"bookworm", "trixie"} {
		t.Run(release, func(t *testing.T) {
			if p := testFetch(t, release); p != nil {
				libc[release] = *p
			}
		})
	}
	if len(libc) < 2 {
		return // a subtest was filtered out or failed
	}
	b, tr := libc["bookworm"], libc["trixie"]
	if b.Version == "" || tr.Version == "" || b.Version == tr.Version || filepath.Dir(b.Path) == filepath.Dir(tr.Path) {
		t.Errorf("libc6 from bookworm (%s, %s) and trixie (%s, %s): want different versions in different states", b.Version, b.Path, tr.Version, tr.Path)
	}
}

// testFetch runs the cold, warm, offline, exclude and repair paths for one
// release and returns the libc6 it resolved.
func testFetch(t *testing.T, release string) *backends.Package {
	testenv.NeedNetwork(t, mirror)
	ctx := context.Background()
	req := backends.Request{Packages: []string{"busybox"}, Release: release, Repositories: debian(release, debianKeyring), Arch: "amd64", CacheDir: sharedCache(t)}
	st, err := stateFor(req)
	if err != nil {
		t.Fatal(err)
	}
	// Forget earlier resolutions and busybox's archive, keep the lists.
	os.RemoveAll(st.resolved())
	old, _ := filepath.Glob(filepath.Join(st.archives(), "busybox_*.deb"))
	for _, f := range old {
		os.Remove(f)
	}

	rec := &recorder{}
	d := newDriver(t, rec, Options{})
	pkgs, err := d.Fetch(ctx, req)
	if err != nil {
		t.Fatalf("Fetch(busybox, %s) = %v", release, err)
	}
	checkPackages(t, "Fetch(busybox, "+release+")", pkgs, "busybox", "libc6")
	if bb := find(pkgs, "busybox"); bb != nil && (!strings.HasPrefix(bb.URL, mirror+"/pool/") || !strings.HasSuffix(bb.URL, ".deb")) {
		t.Errorf("busybox URL = %q, want the archive's URL under %s/pool/", bb.URL, mirror)
	}
	if rec.count("install") != 1 || rec.count("download") != 1 {
		t.Errorf("cold Fetch ran %q, want one install --print-uris and one download", rec.cmds)
	}
	sources, err := os.ReadFile(filepath.Join(st.etc(), "sources.list.d", "pkginitrd.sources"))
	if err != nil || !strings.Contains(string(sources), "URIs: "+mirror+"\nSuites: "+release+"\nComponents: main\nSigned-By: "+debianKeyring+"\n") {
		t.Errorf("sources = %q, %v, want a signed entry for %s", sources, err, release)
	}

	rec.reset()
	again, err := d.Fetch(ctx, req)
	if err != nil || rec.count("") != 0 || !slices.Equal(again, pkgs) {
		t.Errorf("warm Fetch = %v, %v after running %q, want the same packages without running apt", again, err, rec.cmds)
	}
	offline := req
	offline.Offline = true
	if got, err := d.Fetch(ctx, offline); err != nil || rec.count("") != 0 || !slices.Equal(got, pkgs) {
		t.Errorf("offline warm Fetch = %v, %v after running %q, want the same packages without running apt", got, err, rec.cmds)
	}

	excl := req
	excl.Exclude = []string{"libc6", "gcc-12-base", "gcc-14-base"}
	got, err := d.Fetch(ctx, excl)
	if err != nil {
		t.Fatalf("Fetch(busybox, exclude %v) = %v", excl.Exclude, err)
	}
	checkPackages(t, "Fetch(exclude)", got, "busybox")
	for _, x := range excl.Exclude {
		if find(got, x) != nil {
			t.Errorf("Fetch(exclude %v) returned %s", excl.Exclude, x)
		}
	}
	if len(got) >= len(pkgs) || rec.count("download") != 0 {
		t.Errorf("Fetch(exclude) = %d packages after %q, want fewer than %d and no download", len(got), rec.cmds, len(pkgs))
	}

	// A truncated archive, then one with the same size but other bytes, are
	// noticed and fetched again.
	bb := find(pkgs, "busybox")
	want := sha256File(t, bb.Path)
	data, err := os.ReadFile(bb.Path)
	if err != nil {
		t.Fatal(err)
	}
	damage := map[string][]byte{
		"truncated": data[:len(data)/2],
		"corrupted": append(bytes.Clone(data[:len(data)/2]), append([]byte{data[len(data)/2] ^ 0xff}, data[len(data)/2+1:]...)...),
	}
	for _, kind := range []string{"truncated", "corrupted"} {
		if err := os.WriteFile(bb.Path, damage[kind], 0o644); err != nil {
			t.Fatal(err)
		}
		future := time.Now().Add(time.Minute) // a different mtime even on coarse clocks
		os.Chtimes(bb.Path, future, future)
		rec.reset()
		if _, err := d.Fetch(ctx, req); err != nil {
			t.Fatalf("Fetch with a %s archive = %v", kind, err)
		}
		if got := sha256File(t, bb.Path); got != want || rec.count("download") != 1 {
			t.Errorf("Fetch with a %s archive: sha256 %s after %q, want %s after one download", kind, got, rec.cmds, want)
		}
	}
	return find(pkgs, "libc6")
}

func TestFetchUnknownPackage(t *testing.T) {
	testenv.NeedNetwork(t, mirror)
	rec := &recorder{}
	d := newDriver(t, rec, Options{})
	const bogus = "pkginitrd-no-such-package"
	req := backends.Request{Packages: []string{"busybox", bogus}, Release: "bookworm", Repositories: debian("bookworm", debianKeyring), Arch: "amd64", CacheDir: sharedCache(t)}
	_, err := d.Fetch(context.Background(), req)
	var aerr *Error
	if !errors.As(err, &aerr) {
		t.Fatalf("Fetch(%s) = %v, want an *apt.Error", bogus, err)
	}
	msg := err.Error()
	for _, want := range []string{"resolve busybox " + bogus, "apt-get install --print-uris", "E: Unable to locate package " + bogus, "APT_CONFIG="} {
		if !strings.Contains(msg, want) {
			t.Errorf("Fetch(%s) error %q lacks %q", bogus, msg, want)
		}
	}
	if !slices.Equal(aerr.Packages, []string{bogus}) {
		t.Errorf("Fetch(%s) error names packages %q, want [%s]", bogus, aerr.Packages, bogus)
	}
}

func TestFetchOfflineCold(t *testing.T) {
	rec := &recorder{}
	d := newDriver(t, rec, Options{})
	req := backends.Request{Packages: []string{"busybox"}, Release: "bookworm", Repositories: debian("bookworm", debianKeyring), Arch: "amd64", CacheDir: t.TempDir(), Offline: true}
	_, err := d.Fetch(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "offline, and no package lists for bookworm/amd64") {
		t.Errorf("offline Fetch on an empty cache = %v, want an error saying the lists are missing", err)
	}
	if rec.count("") != 0 {
		t.Errorf("offline Fetch ran %q, want nothing", rec.cmds)
	}
}

func TestFetchBadKeyring(t *testing.T) {
	testenv.NeedNetwork(t, mirror)
	// A keyring without Debian's keys: apt must refuse the repository.
	keyring := filepath.Join(t.TempDir(), "empty.gpg")
	if err := os.WriteFile(keyring, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	d := newDriver(t, rec, Options{})
	req := backends.Request{Packages: []string{"busybox"}, Release: "bookworm", Repositories: debian("bookworm", keyring), Arch: "amd64", CacheDir: t.TempDir()}
	_, err := d.Fetch(context.Background(), req)
	var aerr *Error
	if !errors.As(err, &aerr) || !strings.Contains(err.Error(), "update package lists") || !strings.Contains(err.Error(), "is not signed") {
		t.Errorf("Fetch with an empty keyring = %v, want apt-get update's signature error", err)
	}
	st, _ := stateFor(req)
	if id, err := listsID(st.lists()); err == nil {
		t.Errorf("unverified lists were kept: %s", id)
	}
}

func TestFetchHostArchivesOffline(t *testing.T) {
	testenv.NeedNetwork(t, mirror)
	ctx := context.Background()
	req := backends.Request{Packages: []string{"busybox"}, Release: "bookworm", Repositories: debian("bookworm", debianKeyring), Arch: "amd64", CacheDir: sharedCache(t)}
	shared, err := New(Options{}).Fetch(ctx, req)
	if err != nil {
		t.Fatalf("Fetch(busybox) = %v", err)
	}
	src, _ := stateFor(req)

	// A second cache with the lists (copied) but no archives.
	req.CacheDir, req.Offline = t.TempDir(), true
	dst, _ := stateFor(req)
	ents, err := os.ReadDir(src.lists())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst.lists(), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), "deb.debian.org_") {
			copyFile(t, filepath.Join(src.lists(), e.Name()), filepath.Join(dst.lists(), e.Name()))
		}
	}

	rec := &recorder{}
	_, err = newDriver(t, rec, Options{}).Fetch(ctx, req)
	if err == nil || !strings.Contains(err.Error(), "offline, and archives of") || !strings.Contains(err.Error(), "busybox") {
		t.Errorf("offline Fetch without archives = %v, want an error naming the missing archives", err)
	}
	if rec.count("download") != 0 || rec.count("update") != 0 {
		t.Errorf("offline Fetch ran %q, want no update or download", rec.cmds)
	}

	rec.reset()
	got, err := newDriver(t, rec, Options{HostArchives: []string{t.TempDir(), src.archives()}}).Fetch(ctx, req)
	if err != nil {
		t.Fatalf("offline Fetch with host archives = %v", err)
	}
	checkPackages(t, "Fetch(host archives)", got, "busybox", "libc6")
	if len(got) != len(shared) || rec.count("download") != 0 {
		t.Errorf("offline Fetch with host archives = %d packages after %q, want %d without downloads", len(got), rec.cmds, len(shared))
	}
	for _, p := range got {
		if filepath.Dir(p.Path) != dst.archives() {
			t.Errorf("package %s at %s, want it copied into %s", p.Name, p.Path, dst.archives())
		}
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	fi, _ := in.Stat()
	os.Chtimes(dst, fi.ModTime(), fi.ModTime())
}

func TestLock(t *testing.T) {
	st := state{dir: t.TempDir()}
	d := New(Options{})
	unlock, err := d.lock(context.Background(), st)
	if err != nil {
		t.Fatalf("lock = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := d.lock(ctx, st); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second lock while held = %v, want %v", err, context.DeadlineExceeded)
	}
	unlock()
	unlock2, err := d.lock(context.Background(), st)
	if err != nil {
		t.Errorf("lock after unlock = %v", err)
	} else {
		unlock2()
	}
}

func BenchmarkFetchWarm(b *testing.B) {
	cache := filepath.Join(testdeb.CacheDir(b), "apt-backend")
	req := backends.Request{Packages: []string{"busybox"}, Release: "bookworm", Repositories: debian("bookworm", debianKeyring), Arch: "amd64", CacheDir: cache}
	var runs int
	d := New(Options{Run: func(c *exec.Cmd) error { runs++; return c.Run() }})
	if _, err := d.Fetch(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	runs = 0
	for b.Loop() {
		if _, err := d.Fetch(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	if runs != 0 {
		b.Fatalf("warm Fetch ran apt %d times", runs)
	}
}
