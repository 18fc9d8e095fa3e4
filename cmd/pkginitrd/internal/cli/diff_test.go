package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/image"
	"github.com/pkginitrd/pkginitrd/image/manifest"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// writeImage builds an image of a busybox, a symlink and a manifest
// recording busybox's version (none when version is "").
func writeImage(t *testing.T, path, version, target string) {
	t.Helper()
	tree := fstree.New()
	entries := []fstree.Entry{
		{Path: "usr/bin/busybox", Kind: fstree.File, Mode: 0o755, Data: []byte("busybox " + version), Size: int64(len("busybox " + version))},
		{Path: "usr/bin/sh", Kind: fstree.Symlink, Target: target},
	}
	if version != "" {
		data, err := manifest.Marshal(&manifest.Manifest{
			Format: manifest.Format, Generator: "pkginitrd test", KernelVersion: "6.1.0-26-amd64",
			Options:  manifest.Options{Distribution: "debian", Release: "bookworm", Compression: "zstd", Generic: true},
			Packages: []manifest.Package{{Name: "busybox", Version: version, Arch: "amd64"}},
			Modules:  []string{"ext4"},
		})
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, fstree.Entry{Path: manifest.Path, Kind: fstree.File, Mode: 0o644, Data: data, Size: int64(len(data))})
	}
	for _, e := range entries {
		if err := tree.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := image.Build(context.Background(), path, tree, image.Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestInspectShowsManifest(t *testing.T) {
	img := filepath.Join(t.TempDir(), "initrd.img")
	writeImage(t, img, "1:1.35.0-4+b3", "busybox")
	code, out, stderr := runCLI(t, "inspect", "--summary", img)
	if code != 0 {
		t.Fatalf("inspect = %d: %s", code, stderr)
	}
	for _, want := range []string{"pkginitrd test image, kernel 6.1.0-26-amd64", "distribution=debian release=bookworm", "generic=true", "busybox  1:1.35.0-4+b3  amd64", "modules (1): ext4"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
}

func TestInspectDiff(t *testing.T) {
	dir := t.TempDir()
	a, same, b, foreign := filepath.Join(dir, "a.img"), filepath.Join(dir, "same.img"), filepath.Join(dir, "b.img"), filepath.Join(dir, "foreign.img")
	writeImage(t, a, "1.35", "busybox")
	writeImage(t, same, "1.35", "busybox")
	writeImage(t, b, "1.36", "/usr/bin/busybox")
	writeImage(t, foreign, "", "busybox")
	tests := []struct {
		name  string
		args  []string
		code  int
		lines []string // in this order
	}{
		{"same", []string{a, same}, 0, nil},
		{"package and symlink", []string{a, b}, 1, []string{
			"~ etc/pkginitrd/manifest.json  sha256 ",
			"~ usr/bin/busybox  sha256 ",
			"~ usr/bin/sh  target busybox -> /usr/bin/busybox",
			"~ package busybox  1.35 -> 1.36",
		}},
		{"not a pkginitrd image", []string{a, foreign}, 1, []string{
			"- etc  drwxr-xr-x 0:0",
			"- etc/pkginitrd  drwxr-xr-x 0:0",
			"- etc/pkginitrd/manifest.json  -rw-r--r-- 0:0 ",
			"~ usr/bin/busybox  size 12 -> 8, sha256 ",
		}},
		{"missing image", []string{a, filepath.Join(dir, "missing.img")}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, append([]string{"inspect", "--diff"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("inspect --diff = %d (%s), want %d", code, stderr, tt.code)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if out == "" {
				lines = nil
			}
			if len(lines) != len(tt.lines) {
				t.Fatalf("inspect --diff printed\n%s\nwant %d lines", out, len(tt.lines))
			}
			for i, want := range tt.lines {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("line %d = %q, want it to start with %q", i, lines[i], want)
				}
			}
			if tt.code == 2 && !strings.Contains(stderr, "missing.img") {
				t.Errorf("stderr %q does not name the missing image", stderr)
			}
		})
	}
	if code, _, _ := runCLI(t, "inspect", "--diff", a); code != 2 {
		t.Errorf("inspect --diff with one image = %d, want 2", code)
	}
}
