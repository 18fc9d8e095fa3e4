package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testarch"
	"github.com/pkginitrd/pkginitrd/internal/testdeb"
	"github.com/pkginitrd/pkginitrd/internal/testrpm"
)

// BenchmarkWarmBuild times warm generic builds through each backend with
// the same module set (the Debian kernel's generic set): apt from Debian's
// repositories, dnf and pacman from local signed repositories the
// benchmark makes (no Fedora or Arch mirror is reachable here), each with
// LVM but not LUKS. The first build of each warms the cache and is not
// timed. Reported beside the time: the packages and bytes of the image,
// since the three package sets differ. bench/compare-dracut.sh runs it.
func BenchmarkWarmBuild(b *testing.B) {
	if os.Getenv("PKGINITRD_E2E") != "1" || sharedEnv == nil {
		b.Skip("end-to-end benchmark: set PKGINITRD_E2E=1")
	}
	e := sharedEnv
	kroot, kver := testdeb.Kernel(b)
	mods := testdeb.ModulesDir(b, kroot, kver)
	for _, be := range []struct {
		name, distro string
		config       func(testing.TB) string
	}{
		{"apt", "debian", func(testing.TB) string { return "generic_features = [\"!luks\"]\n" }},
		{"dnf", "fedora", dnfBenchConfig},
		{"pacman", "arch", pacmanBenchConfig},
	} {
		b.Run(be.name, func(b *testing.B) {
			dir := b.TempDir()
			conf := filepath.Join(dir, "bench.toml")
			if err := os.WriteFile(conf, []byte(be.config(b)), 0o644); err != nil {
				b.Fatal(err)
			}
			out, manifest := filepath.Join(dir, "initrd.img"), filepath.Join(dir, "manifest.json")
			build := func() {
				cmd := exec.Command(e.bin, "build", "--generic", "--distribution", be.distro, "--config", conf, "--cache-dir", e.cacheDir,
					"--modules-dir", mods, "--kernel-version", kver, "--manifest", manifest, "-o", out)
				if o, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%s: %v\n%s", cmd, err, o)
				}
			}
			build() // warm the cache
			b.ResetTimer()
			for b.Loop() {
				build()
			}
			b.StopTimer()
			var m struct {
				Size     int64
				Packages []json.RawMessage
				Modules  []json.RawMessage
			}
			data, err := os.ReadFile(manifest)
			if err == nil {
				err = json.Unmarshal(data, &m)
			}
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(m.Packages)), "packages")
			b.ReportMetric(float64(len(m.Modules)), "modules")
			b.ReportMetric(float64(m.Size), "image-bytes")
		})
	}
}

// dnfBenchConfig is a local dnf repository with Debian's static busybox
// packaged the Fedora way (the Fedora-family lvm2 is not packaged here).
func dnfBenchConfig(t testing.TB) string {
	bb := filepath.Join(t.TempDir(), "busybox-static")
	if o, err := exec.Command("dpkg-deb", "-x", testdeb.Deb(t, "busybox-static"), bb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, o)
	}
	rpm := testrpm.Build(t, testrpm.Spec{Name: "busybox", Version: "1.36.1", Release: "1.fc41", Files: []testrpm.File{
		{Path: "/usr/sbin/busybox", Mode: 0o755, Src: filepath.Join(bb, "bin/busybox")}}})
	key := testrpm.NewKey(t, "bench")
	key.Sign(t, rpm)
	repo := key.Repo(t, rpm)
	return fmt.Sprintf(`generic_features = ["!luks", "!lvm"]
[distributions.fedora]
keyring = %q
packages = ["!e2fsprogs"]
[distributions.fedora.repositories.fedora]
disabled = true
[distributions.fedora.repositories.updates]
disabled = true
[distributions.fedora.repositories.local]
url = "file://%s"
`, key.Public, repo)
}

// pacmanBenchConfig is the Arch fixture repositories: busybox and lvm2
// with its libraries, from Debian's binaries.
func pacmanBenchConfig(t testing.TB) string {
	f := testarch.NewFixture(t, t.TempDir(), testdeb.Deb)
	conf := "generic_features = [\"!luks\"]\n[distributions.arch]\npackages = [\"!e2fsprogs\"]\n"
	for _, n := range f.Names {
		conf += fmt.Sprintf("[distributions.arch.repositories.%s]\nurl = %q\nkeyring = %q\n", n, "file://"+f.Dir, f.Key.Public)
	}
	return conf
}
