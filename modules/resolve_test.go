package modules

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/kmod"
	"github.com/pkginitrd/pkginitrd/internal/kmod/kmodtest"
)

func TestParseRule(t *testing.T) {
	tests := []struct {
		rule     string
		kind     ruleKind
		matches  [][2]string // name, rel
		misses   [][2]string
		wantsErr bool
	}{
		{rule: "ext4", kind: nameRule,
			matches: [][2]string{{"ext4", "kernel/fs/ext4/ext4.ko"}},
			misses:  [][2]string{{"ext4x", "kernel/fs/ext4/ext4x.ko"}, {"xext4", ""}}},
		{rule: "usb-storage", kind: nameRule,
			matches: [][2]string{{"usb_storage", "kernel/drivers/usb/storage/usb-storage.ko"}}},
		{rule: "dm_.*", kind: regexRule,
			matches: [][2]string{{"dm_crypt", ""}, {"dm_", ""}},
			misses:  [][2]string{{"xdm_crypt", ""}, {"dm", ""}}},
		{rule: "dm-.*", kind: regexRule, matches: [][2]string{{"dm_mod", ""}}},
		{rule: "[a-c]rc.*", kind: regexRule,
			matches: [][2]string{{"crc32c_generic", ""}},
			misses:  [][2]string{{"drc", ""}}},
		{rule: "virtio.*|ahci", kind: regexRule,
			matches: [][2]string{{"virtio_blk", ""}, {"ahci", ""}},
			misses:  [][2]string{{"ahci_platform", ""}}},
		{rule: "kernel/drivers/ata/", kind: pathRule,
			matches: [][2]string{{"ahci", "kernel/drivers/ata/ahci.ko"}, {"x", "kernel/drivers/ata/sub/x.ko.xz"}},
			misses:  [][2]string{{"y", "kernel/drivers/atax/y.ko"}, {"ahci", "updates/drivers/ata/ahci.ko"}}},
		{rule: "fs/btrfs", kind: pathRule,
			matches: [][2]string{{"btrfs", "kernel/fs/btrfs/btrfs.ko.xz"}},
			misses:  [][2]string{{"btrfsx", "kernel/fs/btrfsx/btrfsx.ko"}}},
		{rule: "kernel/fs/ext4/ext4.ko", kind: pathRule,
			matches: [][2]string{{"ext4", "kernel/fs/ext4/ext4.ko"}, {"ext4", "kernel/fs/ext4/ext4.ko.zst"}}},
		{rule: "/updates/", kind: pathRule,
			matches: [][2]string{{"ahci", "updates/drivers/ata/ahci.ko"}}},
		{rule: "(", wantsErr: true},
		{rule: " ", wantsErr: true},
	}
	for _, tt := range tests {
		r, err := parseRule(tt.rule)
		if tt.wantsErr {
			if err == nil {
				t.Errorf("parseRule(%q) succeeded, want an error", tt.rule)
			}
			continue
		}
		if err != nil || r.kind != tt.kind {
			t.Errorf("parseRule(%q) = kind %d, %v, want kind %d", tt.rule, r.kind, err, tt.kind)
			continue
		}
		for _, m := range tt.matches {
			if !r.match(m[0], m[1]) {
				t.Errorf("rule %q: match(%q, %q) = false, want true", tt.rule, m[0], m[1])
			}
		}
		for _, m := range tt.misses {
			if r.match(m[0], m[1]) {
				t.Errorf("rule %q: match(%q, %q) = true, want false", tt.rule, m[0], m[1])
			}
		}
	}
}

// modprobeModules are compared with modprobe --show-depends.
func modprobeModules() []string {
	return []string{"ext4", "btrfs", "xfs", "virtio_blk", "nvme", "ahci", "dm_crypt", "usb_storage", "uas", "squashfs", "overlay", "isofs", "dm_raid", "vfat", "ksmbd",
		// softdep post:
		"vfio", "mpls_iptunnel", "ipmi_msghandler"}
}

// TestResolveAgainstModprobe checks the closure of single modules, from the
// .modinfo of the shipped tree and from depmod's index files of the same
// tree, against modprobe --show-depends on the latter.
func TestResolveAgainstModprobe(t *testing.T) {
	for _, rt := range realTrees() {
		t.Run(rt.name, func(t *testing.T) { testResolveAgainstModprobe(t, rt.dir(t)) })
	}
}

func testResolveAgainstModprobe(t *testing.T, dir string) {
	base, view := kmodtest.DepmodView(t, dir)
	plain := load(t, dir, LoadOptions{})
	indexed := load(t, view, LoadOptions{})
	if plain.index != nil || indexed.index == nil {
		t.Fatalf("Load: the shipped tree should have no index (%v) and the depmod view one (%v)", plain.index != nil, indexed.index != nil)
	}
	if got, want := len(plain.mods), len(indexed.mods); got != want || got < 4000 {
		t.Fatalf("Load found %d modules in %s and %d in %s, want the same ≥ 4000", got, dir, want, view)
	}
	for _, name := range modprobeModules() {
		want, wantBuiltin := kmodtest.ShowDepends(t, base, plain.Version, name)
		a := resolve(t, plain, Selection{Include: []string{name}})
		var builtins []string
		for _, b := range a.Builtins {
			builtins = append(builtins, b.Name)
		}
		if !reflect.DeepEqual(builtins, sorted(wantBuiltin)) {
			t.Errorf("Resolve(%s).Builtins = %q, modprobe --show-depends builtins = %q", name, builtins, sorted(wantBuiltin))
		}
		b := resolve(t, indexed, Selection{Include: []string{name}})
		if got := names(a); !reflect.DeepEqual(got, sorted(want)) {
			t.Errorf("Resolve(%s) from .modinfo = %q, modprobe --show-depends = %q", name, got, sorted(want))
		}
		if !reflect.DeepEqual(names(a), names(b)) || !reflect.DeepEqual(a.Firmware, b.Firmware) {
			t.Errorf("Resolve(%s): from .modinfo %q %q, from modules.dep %q %q", name, names(a), a.Firmware, names(b), b.Firmware)
		}
		if !reflect.DeepEqual(a.Builtins, b.Builtins) {
			t.Errorf("Resolve(%s): builtins from .modinfo %+v, from modules.dep %+v", name, a.Builtins, b.Builtins)
		}
		for i := range a.Modules {
			if i < len(b.Modules) && a.Modules[i].Rel != b.Modules[i].Rel {
				t.Errorf("Resolve(%s): module %s at %s and %s", name, a.Modules[i].Name, a.Modules[i].Rel, b.Modules[i].Rel)
			}
		}
		if m := findModule(a, name); m == nil || m.Reasons[0] != (Reason{Kind: Included, Rule: name}) {
			t.Errorf("Resolve(%s): module %+v, want it with reason %q", name, m, "include rule "+name)
		}
	}
	// Reasons name the path through the graph, soft dependencies (pre:
	// and post:) included.
	for _, c := range []struct{ include, module, reason string }{
		{"ext4", "jbd2", "dependency of ext4"},
		{"ext4", "crc32c_generic", "softdep of ext4"},
		{"ext4", "mbcache", "dependency of ext4"},
		{"vfio", "vfio_iommu_type1", "softdep of vfio"},
	} {
		s := resolve(t, plain, Selection{Include: []string{c.include}})
		if m := findModule(s, c.module); m == nil || !slices.Contains(reasonTexts(m.Reasons), c.reason) {
			t.Errorf("Resolve(%s): module %s = %+v, want reason %q", c.include, c.module, m, c.reason)
		}
	}
	// A softdep post: on a builtin is reported, not copied.
	s := resolve(t, plain, Selection{Include: []string{"mpls_iptunnel"}})
	if !slices.ContainsFunc(s.Builtins, func(b Builtin) bool {
		return b.Name == "mpls_gso" && slices.Contains(b.Reasons, Reason{Kind: SoftdepPost, Parent: "mpls_iptunnel"})
	}) || findModule(s, "mpls_gso") != nil {
		t.Errorf("Resolve(mpls_iptunnel): builtins %+v, want mpls_gso as softdep of mpls_iptunnel, not in Modules", s.Builtins)
	}
	if _, err := os.Stat(filepath.Join(dir, "kernel", "fs", "ext4", "ext4.ko.xz")); err == nil {
		s := resolve(t, plain, Selection{Include: []string{"ext4"}})
		if m := findModule(s, "ext4"); m == nil || !strings.HasSuffix(m.Rel, ".ko.xz") {
			t.Errorf("Resolve(ext4) on a tree of .ko.xz = %+v, want the .ko.xz", m)
		}
	}
}

// TestResolveGeneric resolves the generic default set on the real tree in
// both modes and checks the closure against the modules' own metadata.
func TestResolveGeneric(t *testing.T) {
	for _, rt := range realTrees() {
		t.Run(rt.name, func(t *testing.T) { testResolveGeneric(t, rt.dir(t)) })
	}
}

func testResolveGeneric(t *testing.T, dir string) {
	_, view := kmodtest.DepmodView(t, dir)
	plain := load(t, dir, LoadOptions{})
	s := resolve(t, plain, Selection{Include: genericSet()})
	si := resolve(t, load(t, view, LoadOptions{}), Selection{Include: genericSet()})
	if !reflect.DeepEqual(names(s), names(si)) || !reflect.DeepEqual(s.Firmware, si.Firmware) {
		t.Errorf("generic set from .modinfo = %q %q, from modules.dep = %q %q", names(s), s.Firmware, names(si), si.Firmware)
	}
	if !slices.IsSorted(names(s)) {
		t.Errorf("Set.Modules not sorted: %q", names(s))
	}

	// Which names of the list are builtin, by modules.builtin itself.
	data, err := os.ReadFile(filepath.Join(dir, kmod.BuiltinFile))
	if err != nil {
		t.Fatal(err)
	}
	builtin := map[string]bool{}
	for _, l := range strings.Fields(string(data)) {
		builtin[kmod.NameFromPath(l)] = true
	}
	var builtins []string
	for _, n := range genericSet() {
		if strings.Contains(n, ".") {
			continue
		}
		m := findModule(s, n)
		switch {
		case builtin[n]:
			builtins = append(builtins, n)
			if m != nil || !slices.ContainsFunc(s.Builtins, func(b Builtin) bool { return b.Name == n }) {
				t.Errorf("builtin %s: in Modules %v, want only in Builtins %+v", n, m != nil, s.Builtins)
			}
		case m == nil || !slices.Contains(m.Reasons, Reason{Kind: Included, Rule: n}):
			t.Errorf("generic set: module %s = %+v, want it with reason %q", n, m, "include rule "+n)
		}
	}
	t.Logf("generic set: %d modules, %d builtins named by rules %q, of the list builtin: %q, firmware %q",
		len(s.Modules), len(s.Builtins), s.Builtins, builtins, s.Firmware)

	for _, n := range plain.Modules() {
		if strings.HasPrefix(n, "dm_") {
			if m := findModule(s, n); m == nil || !slices.Contains(m.Reasons, Reason{Kind: Included, Rule: "dm_.*"}) {
				t.Errorf("generic set: %s = %+v, want it with reason %q", n, m, "include rule dm_.*")
			}
		}
	}

	// Closure: every hard and soft dependency from the modules' .modinfo
	// that resolves (by depmod's index) is in the set, and firmware is the
	// union of the modules' firmware.
	idx, err := kmod.ReadIndex(view)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]bool{}
	for _, n := range names(s) {
		in[n] = true
	}
	fw := map[string]bool{}
	for _, m := range s.Modules {
		mi, err := kmod.ReadModInfo(m.Path)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range mi.Firmware {
			fw[f] = true
		}
		for _, d := range mi.Depends {
			if !in[d] {
				t.Errorf("generic set: %s has dependency %s, not in the set", m.Name, d)
			}
		}
		for _, sd := range append(mi.SoftPre, mi.SoftPost...) {
			mods, _ := idx.Lookup(sd)
			for _, d := range mods {
				if !in[d] {
					t.Errorf("generic set: %s has softdep %s (%s), not in the set", m.Name, sd, d)
				}
			}
		}
		if m.Size <= 0 || filepath.Join(dir, m.Rel) != m.Path {
			t.Errorf("module %+v: bad size or path", m)
		}
	}
	if len(fw) != len(s.Firmware) {
		t.Errorf("Set.Firmware = %q, modules name %d firmware files", s.Firmware, len(fw))
	}
}

func TestResolveRules(t *testing.T) {
	plain := load(t, realDir(t), LoadOptions{})
	ctx := context.Background()

	tests := []struct {
		name    string
		sel     Selection
		in, out []string // modules that must be in / out of the set
		builtin []string // must be in Builtins
		errs    []string // the error must mention these; nil: no error
		logs    []string // the log must mention these
	}{
		{name: "exclude wins over a regex, dependents of excluded modules left out",
			sel: Selection{Include: []string{"dm_.*"}, Exclude: []string{"dm_multipath"}},
			in:  []string{"dm_mod", "dm_crypt"}, out: []string{"dm_multipath", "dm_round_robin", "dm_service_time"},
			logs: []string{"module left out: it needs an excluded module", "dm_round_robin"}},
		{name: "excluded hard dependency of a named module is an error naming both",
			sel:  Selection{Include: []string{"ext4", "xfs"}, Exclude: []string{"jbd2"}},
			errs: []string{"ext4", "jbd2"}},
		{name: "excluded softdep is left out silently",
			sel: Selection{Include: []string{"ext4"}, Exclude: []string{"crc32c_generic"}},
			in:  []string{"ext4", "crc32c_intel"}, out: []string{"crc32c_generic"}},
		{name: "included and excluded by name: excluded",
			sel: Selection{Include: []string{"ext4", "xfs"}, Exclude: []string{"ext4"}},
			in:  []string{"xfs"}, out: []string{"ext4", "jbd2"},
			logs: []string{"both included and excluded"}},
		{name: "exclude by path",
			sel: Selection{Include: []string{"kernel/drivers/ata/"}, Exclude: []string{"drivers/ata/pata_.*", "kernel/drivers/ata/pata_acpi.ko"}},
			in:  []string{"ahci", "libata", "pata_jmicron"}, out: []string{"pata_acpi"}},
		{name: "unknown name is an error naming it",
			sel:  Selection{Include: []string{"ext4", "no_such_module", "other-missing"}},
			errs: []string{"no_such_module", "other-missing"}},
		{name: "regex and path matching nothing warn",
			sel:  Selection{Include: []string{"no_such_.*", "kernel/nowhere/", "ext4"}},
			in:   []string{"ext4"},
			logs: []string{"module rule matches nothing", "no_such_.*", "kernel/nowhere/"}},
		{name: "builtins are reported, not copied",
			sel:     Selection{Include: []string{"unix", "sha256-generic", "crc32"}, ForceLoad: []string{"ipv6"}},
			builtin: []string{"unix", "sha256_generic", "crc32", "ipv6"}},
		{name: "builtins reached through a softdep",
			sel: Selection{Include: []string{"ksmbd"}}, in: []string{"ksmbd"},
			builtin: []string{"hmac", "md5"}},
		{name: "force-load",
			sel: Selection{ForceLoad: []string{"virtio-blk"}},
			in:  []string{"virtio_blk", "virtio", "virtio_ring"}},
		{name: "force-load needs a name",
			sel:  Selection{ForceLoad: []string{"virtio.*"}},
			errs: []string{"virtio.*", "not a module name"}},
		{name: "bad regex",
			sel:  Selection{Include: []string{"dm_(", "ext4"}},
			errs: []string{"dm_("}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			plain.log = testLogger(&logs)
			defer func() { plain.log = testLogger(&bytes.Buffer{}) }()
			s, err := Resolve(ctx, plain, tt.sel)
			if tt.errs != nil {
				if err == nil {
					t.Fatalf("Resolve(%+v) succeeded, want an error mentioning %q", tt.sel, tt.errs)
				}
				for _, e := range tt.errs {
					if !strings.Contains(err.Error(), e) {
						t.Errorf("Resolve(%+v) error %q does not mention %q", tt.sel, err, e)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%+v): %v", tt.sel, err)
			}
			for _, n := range tt.in {
				if findModule(s, n) == nil {
					t.Errorf("Resolve(%+v): %s missing from %q", tt.sel, n, names(s))
				}
			}
			for _, n := range tt.out {
				if findModule(s, n) != nil {
					t.Errorf("Resolve(%+v): %s in the set, want it left out", tt.sel, n)
				}
			}
			for _, n := range tt.builtin {
				if !slices.ContainsFunc(s.Builtins, func(b Builtin) bool { return b.Name == n }) {
					t.Errorf("Resolve(%+v).Builtins = %+v, want %s", tt.sel, s.Builtins, n)
				}
				if findModule(s, n) != nil {
					t.Errorf("Resolve(%+v): builtin %s in Modules", tt.sel, n)
				}
			}
			for _, l := range tt.logs {
				if !strings.Contains(logs.String(), l) {
					t.Errorf("Resolve(%+v) log does not mention %q:\n%s", tt.sel, l, logs.String())
				}
			}
		})
	}

	_, err := Resolve(ctx, plain, Selection{Include: []string{"no_such_module"}})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Resolve(no_such_module) error = %v, want fs.ErrNotExist", err)
	}
	s := resolve(t, plain, Selection{Include: []string{"ext4"}, ForceLoad: []string{"virtio-blk", "unix"}})
	if !reflect.DeepEqual(s.ForceLoad, []string{"virtio_blk"}) {
		t.Errorf("Set.ForceLoad = %q, want [virtio_blk]", s.ForceLoad)
	}
	if m := findModule(s, "virtio_blk"); m == nil || m.Reasons[0] != (Reason{Kind: ForceLoaded, Rule: "virtio-blk"}) {
		t.Errorf("force-loaded virtio_blk = %+v, want reason force-load", m)
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Load(ctx, filepath.Join(t.TempDir(), "nope"), LoadOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing dir) = %v, want fs.ErrNotExist", err)
	}
	if _, err := Load(ctx, t.TempDir(), LoadOptions{}); err == nil {
		t.Errorf("Load(empty dir) succeeded, want an error")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, kmod.DepFile), []byte("garbage\n"), 0o644)
	if _, err := Load(ctx, dir, LoadOptions{}); err == nil || !strings.Contains(err.Error(), kmod.DepFile) {
		t.Errorf("Load(bad modules.dep) = %v, want an error naming %s", err, kmod.DepFile)
	}
}

// TestLoadUpdates checks that a module in updates/ wins over kernel/.
func TestLoadUpdates(t *testing.T) {
	real := load(t, realDir(t), LoadOptions{})
	dir := smallTree(t, real, []string{"virtio_blk", "virtio", "virtio_ring"}, func(string) compress.Format { return compress.None })
	copyFile(t, real.mods["virtio_blk"].path, filepath.Join(dir, "updates", "virtio_blk.ko"))
	var logs bytes.Buffer
	tr := load(t, dir, LoadOptions{Logger: testLogger(&logs)})
	s := resolve(t, tr, Selection{Include: []string{"virtio_blk"}})
	if m := findModule(s, "virtio_blk"); m == nil || m.Rel != "updates/virtio_blk.ko" {
		t.Errorf("virtio_blk = %+v, want the one in updates/", m)
	}
	if !strings.Contains(logs.String(), "module found twice") {
		t.Errorf("no warning about the duplicate module in:\n%s", logs.String())
	}
	if got, want := names(s), []string{"virtio", "virtio_blk", "virtio_ring"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve(virtio_blk) = %q, want %q", got, want)
	}
}
