package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/backends"
	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/image"
	"github.com/pkginitrd/pkginitrd/image/cpio"
	"github.com/pkginitrd/pkginitrd/internal/testdeb"
	"github.com/pkginitrd/pkginitrd/internal/testenv"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
)

// debBackend serves fixed real Debian packages instead of running apt.
type debBackend struct{ pkgs []backends.Package }

func (b debBackend) Name() string { return "test" }
func (b debBackend) Fetch(ctx context.Context, req backends.Request) ([]backends.Package, error) {
	return backends.Filter(b.pkgs, req.Exclude), nil
}

func testOptions(t testing.TB) Options {
	t.Helper()
	cfg, _, err := confd.Load(confd.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Distribution = "debian"
	d := cfg.Distributions["debian"]
	d.Packages = []string{"busybox"}
	cfg.Distributions["debian"] = d
	cfg.Modules.Generic = []string{"virtio_blk", "ext4"}
	kroot, kver := testdeb.Kernel(t)
	var pkgs []backends.Package
	for _, name := range []string{"busybox", "libc6", "perl-base"} {
		pkgs = append(pkgs, backends.Package{Name: name, Version: "test", Arch: "amd64", Path: testdeb.Deb(t, name)})
	}
	// A static ELF stands in for the pkginitrd binary.
	static := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", testdeb.Deb(t, "busybox-static"), static).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, out)
	}
	dir := t.TempDir()
	return Options{
		Config:     cfg,
		ModulesDir: filepath.Join(kroot, "lib", "modules", kver),
		Generic:    true,
		Output:     filepath.Join(dir, "initrd.img"),
		CacheDir:   filepath.Join(dir, "cache"),
		Stage0:     filepath.Join(static, "bin", "busybox"),
		Backend:    debBackend{pkgs},
	}
}

func TestRunBuildsBootableTree(t *testing.T) {
	opts := testOptions(t)
	// A keymap the build host lacks is left out with a warning.
	opts.Config.Console.GenericKeymaps = append(opts.Config.Console.GenericKeymaps, "no-such-keymap")
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(opts.Output)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	segs, err := image.Inspect(f, res.Image.Size)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1 || segs[0].Compression != "zstd" {
		t.Fatalf("Inspect = %d segments (%v), want one zstd segment", len(segs), segs)
	}
	have := map[string]cpio.Header{}
	for _, h := range segs[0].Entries {
		have[h.Name] = h
	}
	kver := filepath.Base(opts.ModulesDir)
	for _, p := range []string{
		"init", "dev/console", "usr/bin/busybox", "usr/bin/sh", "usr/sbin/modprobe", "usr/lib64/ld-linux-x86-64.so.2",
		"usr/lib/x86_64-linux-gnu/libc.so.6", bootconf.Path, "etc/initrd-release",
		"usr/lib/modules/" + kver + "/kernel/drivers/block/virtio_blk.ko",
		"usr/lib/modules/" + kver + "/kernel/fs/ext4/ext4.ko",
		"usr/lib/modules/" + kver + "/modules.dep", "usr/lib/modules/" + kver + "/modules.alias",
	} {
		if _, ok := have[p]; !ok {
			t.Errorf("image lacks %s", p)
		}
	}
	if _, err := exec.LookPath("loadkeys"); err == nil {
		for _, p := range []string{"etc/pkginitrd/keymaps/de.bmap", "etc/pkginitrd/keymaps/fr-latin1.bmap"} {
			if _, ok := have[p]; !ok {
				t.Errorf("generic image lacks %s of the configured keymap set", p)
			}
		}
	}
	if _, ok := have["etc/pkginitrd/keymaps/no-such-keymap.bmap"]; ok {
		t.Error("generic image has a keymap loadkeys could not compile")
	}
	for _, p := range []string{"usr/bin/perl", "usr/share/doc/busybox/copyright", "usr/share/man"} {
		if _, ok := have[p]; ok {
			t.Errorf("image has %s, which the exclude/prune rules drop", p)
		}
	}
	if h := have["dev/console"]; h.RdevMajor != 5 || h.RdevMinor != 1 {
		t.Errorf("dev/console = %d,%d, want 5,1", h.RdevMajor, h.RdevMinor)
	}
	if h := have["tmp"]; h.Mode&0o7777 != 0o1777 {
		t.Errorf("tmp mode = %o, want 1777", h.Mode&0o7777)
	}
	if res.Manifest.KernelVersion != kver || len(res.Manifest.Modules) < 3 {
		t.Errorf("manifest kernel %q modules %d, want %s and ext4's closure", res.Manifest.KernelVersion, len(res.Manifest.Modules), kver)
	}
	steps := buildSteps()
	for _, s := range steps[:len(steps)-1] { // the last step writes the manifest
		if _, ok := res.Manifest.Timings[s.name]; !ok {
			t.Errorf("manifest timings %v lack step %q", res.Manifest.Timings, s.name)
		}
	}
}

// TestStepsLogged checks that a build logs each step by its String() and
// that `pkginitrd modules` runs the same first steps as a build.
func TestStepsLogged(t *testing.T) {
	opts := testOptions(t)
	var logs strings.Builder
	opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	set, kver, err := Modules(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if kver != filepath.Base(opts.ModulesDir) || len(set.Modules) < 3 {
		t.Errorf("Modules = %d modules for %q, want ext4's closure for %s", len(set.Modules), kver, filepath.Base(opts.ModulesDir))
	}
	steps := buildSteps()
	for _, s := range steps[:3] {
		if !strings.Contains(logs.String(), s.String()) {
			t.Errorf("Modules log lacks step %q:\n%s", s, logs.String())
		}
	}
	for _, s := range steps[3:6] {
		if strings.Contains(logs.String(), s.String()) {
			t.Errorf("Modules ran step %q, which only a build needs", s)
		}
	}
}

func TestRunIsReproducible(t *testing.T) {
	opts := testOptions(t)
	opts.Mtime = 1700000000
	a, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(opts.Output)
	b, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(opts.Output)
	if a.Image.SHA256 != b.Image.SHA256 || !bytes.Equal(first, second) {
		t.Errorf("two builds differ: %s vs %s", a.Image.SHA256, b.Image.SHA256)
	}
}

func TestRunFailuresLeaveNoImage(t *testing.T) {
	dynamic := testenv.NeedTool(t, "apt-get", "apt") // any dynamic executable
	cases := []struct {
		name   string
		modify func(*Options)
		want   string
	}{
		{"missing include", func(o *Options) { o.Includes = []Include{{Src: "/nonexistent/key", Dest: "/etc/key"}} }, "/nonexistent/key"},
		{"dynamic stage0", func(o *Options) { o.Stage0 = dynamic }, "CGO_ENABLED=0"},
		{"unknown module", func(o *Options) { o.Config.Modules.Include = []string{"no_such_module"} }, "no_such_module"},
		{"bad compression", func(o *Options) { o.Config.Compression = "brotli" }, "brotli"},
		{"missing modules dir", func(o *Options) { o.ModulesDir = "/nonexistent/modules" }, "/nonexistent/modules"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions(t)
			tc.modify(&opts)
			_, err := Run(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error mentioning %q", err, tc.want)
			}
			if _, err := os.Stat(opts.Output); !os.IsNotExist(err) {
				t.Errorf("failed build left %s behind (stat: %v)", opts.Output, err)
			}
			ents, _ := os.ReadDir(filepath.Dir(opts.Output))
			for _, e := range ents {
				if e.Name() != "cache" {
					t.Errorf("failed build left %s in the output directory", e.Name())
				}
			}
		})
	}
}

func TestKernelVersionLess(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"6.1.0-9-amd64", "6.1.0-10-amd64", true},
		{"6.1.0-10-amd64", "6.1.0-9-amd64", false},
		{"6.1.0-26-amd64", "6.12.6-amd64", true},
		{"5.10.0-30-amd64", "6.1.0-1-amd64", true},
		{"6.1.0-26-amd64", "6.1.0-26-amd64", false},
		{"6.1.0", "6.1.0-1", true},
	} {
		if got := kernelVersionLess(tc.a, tc.b); got != tc.want {
			t.Errorf("kernelVersionLess(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestParseInclude(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Include
		err  bool
	}{
		{"key:/etc/key", Include{"key", "/etc/key"}, false},
		{"/etc/crypttab", Include{"/etc/crypttab", "/etc/crypttab"}, false},
		{":/x", Include{}, true},
		{"x:", Include{}, true},
	} {
		got, err := ParseInclude(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseInclude(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestRelativeTarget(t *testing.T) {
	for _, tc := range []struct{ link, target, want string }{
		{"usr/bin/sh", "usr/bin/busybox", "busybox"},
		{"usr/sbin/modprobe", "usr/bin/busybox", "../bin/busybox"},
		{"sh", "usr/bin/busybox", "usr/bin/busybox"},
		{"a/b/c/x", "d/y", "../../../d/y"},
	} {
		if got := relativeTarget(tc.link, tc.target); got != tc.want {
			t.Errorf("relativeTarget(%q, %q) = %q, want %q", tc.link, tc.target, got, tc.want)
		}
	}
}

// copyBackend fetches like apt: it copies each package's archive into the
// cache unless a copy is there, which it trusts by name (apt's warm check
// trusts size and mtime), and reports the archive's SHA256.
type copyBackend struct {
	pkgs    []backends.Package
	fetches *int
}

func (b copyBackend) Name() string { return "test" }
func (b copyBackend) Fetch(ctx context.Context, req backends.Request) ([]backends.Package, error) {
	*b.fetches++
	var out []backends.Package
	for _, p := range b.pkgs {
		data, err := os.ReadFile(p.Path)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		dst := filepath.Join(req.CacheDir, "archives", filepath.Base(p.Path))
		if _, err := os.Stat(dst); err != nil {
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return nil, err
			}
			if err := os.WriteFile(dst, data, 0o600); err != nil {
				return nil, err
			}
		}
		p.Path, p.SHA256 = dst, hex.EncodeToString(sum[:])
		out = append(out, p)
	}
	return backends.Filter(out, req.Exclude), nil
}

// TestRunCorruptArchive: an archive in the cache corrupted with its size
// and mtime unchanged made every later build fail with a decompressor
// error (issue 10). Now it is detected, fetched again, and the build works.
func TestRunCorruptArchive(t *testing.T) {
	opts := testOptions(t)
	fetches := 0
	opts.Backend = copyBackend{pkgs: opts.Backend.(debBackend).pkgs, fetches: &fetches}
	if _, err := Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	deb := filepath.Join(opts.CacheDir, "archives", filepath.Base(testdeb.Deb(t, "libc6")))
	fi, err := os.Stat(deb)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(deb, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("corrupt!"), fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(deb, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	// Without unpacked trees the archive must be read.
	if err := os.RemoveAll(filepath.Join(opts.CacheDir, "trees")); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	fetches = 0
	if _, err := Run(context.Background(), opts); err != nil {
		t.Fatalf("Run with a corrupt cached archive = %v, want it fetched again", err)
	}
	if fetches != 2 || !strings.Contains(logs.String(), "damaged") || !strings.Contains(logs.String(), deb) {
		t.Errorf("Run with a corrupt cached archive: %d fetches, log %q; want 2 and a warning naming %s", fetches, logs.String(), deb)
	}
}
