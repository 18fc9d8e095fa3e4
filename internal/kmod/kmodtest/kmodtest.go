// Package kmodtest holds test helpers around the system's kmod tools
// (depmod, modprobe) for tests that check pkginitrd against them. It needs
// the Debian package kmod.
package kmodtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/kmod"
	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

// DepmodView makes a temporary base directory whose lib/modules/KVER links
// to the kernel/ directory of modDir (…/lib/modules/KVER, not modified) and
// holds copies of its modules.builtin* and modules.order, runs
// `depmod -b BASE KVER` there and returns BASE and the view's module
// directory. modules.softdep is rewritten to one line per module (see
// MergeSoftDeps) so that modprobe honours all of a module's soft
// dependencies.
func DepmodView(t testing.TB, modDir string) (base, viewDir string) {
	t.Helper()
	kver := filepath.Base(modDir)
	base = t.TempDir()
	viewDir = filepath.Join(base, "lib", "modules", kver)
	if err := os.MkdirAll(viewDir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(modDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		src := filepath.Join(modDir, e.Name())
		switch {
		case e.IsDir():
			// kernel/, updates/, extra/…: depmod follows the link.
			if err := os.Symlink(src, filepath.Join(viewDir, e.Name())); err != nil {
				t.Fatal(err)
			}
		case e.Name() == kmod.BuiltinFile || e.Name() == kmod.BuiltinModInfoFile || e.Name() == kmod.OrderFile:
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(viewDir, e.Name()), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	Depmod(t, base, kver)
	MergeSoftDeps(t, viewDir)
	return base, viewDir
}

// Depmod runs `depmod -b base kver`.
func Depmod(t testing.TB, base, kver string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(testenv.NeedTool(t, "depmod", "kmod"), "-b", base, kver)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("depmod -b %s %s: %v: %s (install the Debian package kmod)", base, kver, err, stderr.String())
	}
}

// MergeSoftDeps rewrites modDir/modules.softdep so that each module has one
// line with all its pre and post names: depmod writes one line per softdep=
// entry, but modprobe (kmod 30) only honours a module's first line.
func MergeSoftDeps(t testing.TB, modDir string) {
	t.Helper()
	file := filepath.Join(modDir, kmod.SoftDepFile)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	deps, err := kmod.ParseSoftDep(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var merged []kmod.SoftDep
	pos := map[string]int{}
	for _, d := range deps {
		i, ok := pos[d.Module]
		if !ok {
			i = len(merged)
			pos[d.Module] = i
			merged = append(merged, kmod.SoftDep{Module: d.Module})
		}
		merged[i].Pre = append(merged[i].Pre, d.Pre...)
		merged[i].Post = append(merged[i].Post, d.Post...)
	}
	var buf bytes.Buffer
	if err := kmod.WriteSoftDep(&buf, merged); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ShowDepends runs `modprobe --show-depends` for module name on the tree
// at base and returns the normalized names of the modules it would insert
// (each once, in its order) and of the builtins it names. The host's
// modprobe.d is ignored.
func ShowDepends(t testing.TB, base, kver, name string) (insmod, builtin []string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(testenv.NeedTool(t, "modprobe", "kmod"), "-C", t.TempDir(), "--show-depends", "-d", base, "-S", kver, name)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		var n string
		switch f[0] {
		case "insmod":
			n = kmod.NameFromPath(f[1])
		case "builtin":
			n = kmod.Normalize(f[1])
		default:
			continue
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		if f[0] == "insmod" {
			insmod = append(insmod, n)
		} else {
			builtin = append(builtin, n)
		}
	}
	return insmod, builtin
}
