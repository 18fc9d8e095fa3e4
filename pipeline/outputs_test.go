package pipeline

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/backends"
)

// countingBackend counts the fetches of the backend it wraps.
type countingBackend struct {
	backends.Backend
	calls *int
}

func (b countingBackend) Fetch(ctx context.Context, req backends.Request) ([]backends.Package, error) {
	*b.calls++
	return b.Backend.Fetch(ctx, req)
}

// runWith is Run with the step extra inserted after the step named after.
func runWith(ctx context.Context, opts Options, after string, extra step) (*Result, error) {
	b, err := newBuild(opts)
	if err != nil {
		return nil, err
	}
	steps := buildSteps()
	i := slices.IndexFunc(steps, func(s step) bool { return s.name == after })
	return b.build(ctx, slices.Insert(steps, i+1, extra))
}

func writeMode(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

// TestRunImageMode checks the image file's mode (0600 for a new image,
// the replaced image's mode on rebuild, image_mode when set) and the
// warning about an included secret that the image's mode exposes.
func TestRunImageMode(t *testing.T) {
	tests := []struct {
		name     string
		existing fs.FileMode // 0 = no previous image
		setting  string
		want     fs.FileMode
	}{
		{"new image", 0, "", 0o600},
		{"rebuild keeps the mode", 0o640, "", 0o640},
		{"image_mode wins", 0o644, "0600", 0o600},
		{"image_mode exposing a secret", 0, "0644", 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions(t)
			opts.Config.ImageMode = tt.setting
			secret := filepath.Join(t.TempDir(), "keyfile")
			writeMode(t, secret, "key", 0o600)
			opts.Includes = []Include{{Src: secret, Dest: "/etc/keyfile"}}
			if tt.existing != 0 {
				writeMode(t, opts.Output, "previous image", tt.existing)
			}
			var logs strings.Builder
			opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			if _, err := Run(context.Background(), opts); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(opts.Output); err != nil || fi.Mode().Perm() != tt.want {
				t.Errorf("image mode = %v (%v), want %v", fi.Mode(), err, tt.want)
			}
			var warned []string
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "level=WARN") && strings.Contains(l, "not world-readable") {
					warned = append(warned, l)
				}
			}
			exposed := tt.want&0o044 != 0
			if exposed && (len(warned) != 1 || !strings.Contains(warned[0], secret)) || !exposed && len(warned) != 0 {
				t.Errorf("warnings %q; want one naming %s only when the image mode %v exposes it", warned, secret, tt.want)
			}
		})
	}
}

func TestImageModeSetting(t *testing.T) {
	for _, s := range []string{"0999", "rw-r--r--", "01777", "-1"} {
		if _, err := imageMode(s, "/nonexistent"); err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("imageMode(%q) = %v, want an error naming it", s, err)
		}
	}
}

func replaceByDir(path string) error {
	if err := os.Remove(path); err != nil {
		return err
	}
	return os.Mkdir(path, 0o755)
}

// TestRunOutputsTogether builds with a kernel beside the image and a
// manifest: they replace the previous ones only together, and a failure or
// cancellation at any point leaves all of them untouched, removes the
// build's temporaries and, first, those a killed build left behind.
func TestRunOutputsTogether(t *testing.T) {
	const kernelDir, manifestDir = "kernel is a directory", "manifest became a directory"
	tests := []struct {
		name  string
		after string // step after which hook runs
		hook  func(b *build, cancel func()) error
		want  string // error; "" = success
	}{
		{"success", "kernel", func(*build, func()) error { return nil }, ""},
		{kernelDir, "kernel", func(b *build, _ func()) error { return replaceByDir(b.vmlinuzPath()) }, ": is a directory"},
		{manifestDir, "stage0", func(b *build, _ func()) error { return replaceByDir(b.opts.Manifest) }, "manifest.json: is a directory"},
		{"cancelled while writing (SIGHUP)", "stage0", func(_ *build, cancel func()) error { cancel(); return nil }, "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions(t)
			dir := filepath.Dir(opts.Output)
			opts.Manifest = filepath.Join(dir, "manifest.json")
			kernel := "vmlinuz-" + filepath.Base(opts.ModulesDir)
			files := map[string]string{ // the previous outputs and files that are not ours
				"initrd.img": "previous image", "manifest.json": "previous manifest", kernel: "previous kernel",
				".other.tmp-1": "not ours", ".initrd.img.lock": "not a temporary", ".initrd.img.tmp-x": "not our pattern",
			}
			for name, content := range files {
				writeMode(t, filepath.Join(dir, name), content, 0o644)
			}
			for _, stale := range []string{".initrd.img.tmp-123", "." + kernel + ".tmp-4", ".manifest.json.tmp-56"} {
				writeMode(t, filepath.Join(dir, stale), "left by a killed build", 0o600)
			}
			vmlinuz := filepath.Join(t.TempDir(), "vmlinuz")
			writeMode(t, vmlinuz, "new kernel", 0o644)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			hook := step{"hook", "test: a kernel package's vmlinuz, then the test's change", func(b *build, ctx context.Context) error {
				b.kern.Vmlinuz = vmlinuz
				return tt.hook(b, cancel)
			}}
			res, err := runWith(ctx, opts, tt.after, hook)
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want == "":
				img, _ := os.ReadFile(opts.Output)
				m, _ := os.ReadFile(opts.Manifest)
				files["initrd.img"], files[kernel], files["manifest.json"] = string(img), "new kernel", string(m)
				if res.Image.Size != int64(len(img)) || res.Vmlinuz != filepath.Join(dir, kernel) || !strings.Contains(string(m), res.Image.SHA256) {
					t.Errorf("result %+v, vmlinuz %s, manifest %.80q; want the new image, kernel and manifest", res.Image, res.Vmlinuz, m)
				}
			case err == nil || !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Run = %v, want an error containing %q", err, tt.want)
			case tt.name == kernelDir:
				delete(files, kernel)
				if !strings.Contains(err.Error(), kernel) {
					t.Errorf("Run = %v, want it to name %s", err, kernel)
				}
			case tt.name == manifestDir:
				delete(files, "manifest.json")
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				content, ok := files[e.Name()]
				if e.IsDir() && e.Name() != kernel && e.Name() != "manifest.json" && e.Name() != "cache" || !e.IsDir() && !ok {
					t.Errorf("unexpected %s left in the output directory", e.Name())
				}
				if b, _ := os.ReadFile(filepath.Join(dir, e.Name())); ok && string(b) != content {
					t.Errorf("%s = %.40q, want %.40q", e.Name(), b, content)
				}
			}
		})
	}
}

// TestRunChecksOutputsFirst checks that an output path that cannot take
// the output fails before any slow work (nothing fetched), naming it.
func TestRunChecksOutputsFirst(t *testing.T) {
	tests := []struct {
		name   string
		modify func(o *Options)
		want   func(o Options) string
	}{
		{"output is a directory", func(o *Options) { o.Output = filepath.Dir(o.Output) }, func(o Options) string { return o.Output + ": is a directory" }},
		{"output directory missing", func(o *Options) { o.Output = filepath.Join(o.Output, "..", "missing", "initrd.img") }, func(o Options) string { return "missing does not exist" }},
		{"manifest is a directory", func(o *Options) { o.Manifest = filepath.Dir(o.Output) }, func(o Options) string { return o.Manifest + ": is a directory" }},
		{"manifest directory missing", func(o *Options) { o.Manifest = "/nonexistent/manifest.json" }, func(o Options) string { return "/nonexistent does not exist" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions(t)
			image := opts.Output
			writeMode(t, image, "previous image", 0o644)
			calls := 0
			opts.Backend = countingBackend{opts.Backend, &calls}
			opts.KernelPackage = "linux-image-amd64" // fetched by the kernel step
			tt.modify(&opts)
			_, err := Run(context.Background(), opts)
			if want := tt.want(opts); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Run = %v, want an error containing %q", err, want)
			}
			if b, _ := os.ReadFile(image); string(b) != "previous image" {
				t.Errorf("failed build changed %s to %.40q", image, b)
			}
			if calls != 0 {
				t.Errorf("the backend was called %d times before the output check", calls)
			}
		})
	}
}
