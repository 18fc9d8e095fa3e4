package modules

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/internal/kmod"
)

// TestResolveWants resolves detector Wants (names, aliases, modaliases) on
// the real Debian tree.
func TestResolveWants(t *testing.T) {
	tr := load(t, realDir(t), LoadOptions{})
	var logs bytes.Buffer
	tr.log = testLogger(&logs)
	chain := Reason{Kind: RootDevice, Rule: "root device chain (vda1 ← vda ← virtio0 ← virtio_blk)"}
	s := resolve(t, tr, Selection{Wants: []Want{
		{Name: "fs-ext4", Reason: Reason{Kind: RootDevice, Rule: "root filesystem ext4"}},
		{Name: "virtio_blk", Reason: chain},
		{Name: "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", Reason: Reason{Kind: RootDevice, Rule: "root device chain (modalias)"}, IfMissing: MissingIgnore},
		{Name: "usb-storage", Reason: Reason{Kind: HostLoaded, Rule: "loaded on host"}, IfMissing: MissingWarn},
		{Name: "no_such_module", Reason: Reason{Kind: HostLoaded, Rule: "loaded on host"}, IfMissing: MissingWarn},
		{Name: "platform:no-such-device", Reason: Reason{Kind: RootDevice, Rule: "root device chain (modalias)"}, IfMissing: MissingIgnore},
	}})
	for _, c := range []struct{ name, reason string }{
		{"ext4", "root filesystem ext4"},
		{"virtio_blk", chain.Rule},
		{"virtio_pci", "root device chain (modalias)"},
		{"usb_storage", "loaded on host"},
		{"jbd2", "dependency of ext4"},
	} {
		if m := findModule(s, c.name); m == nil || !slices.Contains(reasonTexts(m.Reasons), c.reason) {
			t.Errorf("Resolve(Wants): module %s = %+v, want reason %q", c.name, m, c.reason)
		}
	}
	if !strings.Contains(logs.String(), "no_such_module") || !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("a MissingWarn Want naming nothing logged no warning:\n%s", logs.String())
	}
	// ForceLoad Wants: the modules an alias resolves to are force-loaded,
	// builtins and hard dependencies are not.
	crypt := Reason{Kind: RootDevice, Rule: "root device chain (dm-0 ← LUKS2 cipher aes-xts-plain64)"}
	s = resolve(t, tr, Selection{ForceLoad: []string{"loop"}, Wants: []Want{
		{Name: "crypto-xts", Reason: crypt, IfMissing: MissingWarn, ForceLoad: true},
		{Name: "crypto-aes", Reason: crypt, IfMissing: MissingWarn, ForceLoad: true},
		{Name: "dm_crypt", Reason: Reason{Kind: RootDevice, Rule: "root device chain (dm-0 ← dm-crypt)"}},
	}})
	if want := []string{"loop", "xts", "aesni_intel"}; !slices.Equal(s.ForceLoad[:min(3, len(s.ForceLoad))], want) {
		t.Errorf("Resolve(ForceLoad Wants crypto-xts, crypto-aes).ForceLoad = %q, want %q first", s.ForceLoad, want)
	}
	for _, n := range []string{"dm_crypt", "dm_mod", "cryptd", "crypto_simd"} {
		if slices.Contains(s.ForceLoad, n) {
			t.Errorf("Set.ForceLoad = %q has %s, which no force-load rule or ForceLoad Want names", s.ForceLoad, n)
		}
	}

	_, err := Resolve(context.Background(), tr, Selection{Wants: []Want{{Name: "no_such_driver", Reason: Reason{Kind: RootDevice, Rule: "root device chain (sda ← no_such_driver)"}}}})
	if err == nil || !strings.Contains(err.Error(), "no_such_driver") || !strings.Contains(err.Error(), "root device chain") {
		t.Errorf("Resolve(missing required Want) error = %v, want one naming it and its reason", err)
	}
}

// TestAddFirmware copies firmware named by real modules from a firmware
// directory made here: plain, xz and zstd variants, kept compressed or
// decompressed as the kernel reads them, and missing files.
func TestAddFirmware(t *testing.T) {
	tr := load(t, realDir(t), LoadOptions{})
	// Modules of the real tree that name firmware.
	var withFW []string
	for _, n := range []string{"bnx2", "tg3", "e100", "r8169", "qla2xxx", "amdgpu"} {
		if tr.mods[n] != nil {
			withFW = append(withFW, n)
		}
	}
	s := resolve(t, tr, Selection{Include: withFW})
	if len(s.Firmware) < 4 {
		t.Fatalf("modules %q name %d firmware files, want at least 4 for this test", withFW, len(s.Firmware))
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "fw")
	write := func(rel string, data []byte) {
		p := filepath.Join(src, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plain, xzName, zstName, missing := s.Firmware[0], s.Firmware[1], s.Firmware[2], s.Firmware[3]
	write(plain, []byte("plain firmware"))
	for _, c := range []struct {
		name string
		comp compress.Format
	}{{xzName, compress.XZ}, {zstName, compress.Zstd}} {
		raw := filepath.Join(dir, "raw")
		if err := os.WriteFile(raw, []byte("firmware "+c.name), 0o644); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(src, c.name+c.comp.Ext())
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		compressFile(t, c.comp, raw, dst)
	}
	for _, tc := range []struct {
		reads []compress.Format
		want  []string // image paths of xzName and zstName
	}{
		{nil, []string{xzName, zstName}},
		{[]compress.Format{compress.XZ}, []string{xzName + ".xz", zstName}},
		{[]compress.Format{compress.XZ, compress.Zstd}, []string{xzName + ".xz", zstName + ".zst"}},
	} {
		var logs bytes.Buffer
		ft := fstree.New()
		added, err := s.AddFirmware(ft, "usr/lib/firmware", FirmwareOptions{Dirs: []string{filepath.Join(dir, "none"), src},
			KernelReads: tc.reads, CacheDir: filepath.Join(dir, "cache"), Logger: testLogger(&logs)})
		if err != nil {
			t.Fatalf("AddFirmware(reads %v): %v", tc.reads, err)
		}
		want := append([]string{plain}, tc.want...)
		slices.Sort(want)
		got := slices.Sorted(slices.Values(added))
		if !slices.Equal(got, want) {
			t.Errorf("AddFirmware(reads %v) = %q, want %q", tc.reads, got, want)
		}
		for _, rel := range want {
			e := ft.Get("usr/lib/firmware/" + rel)
			if e == nil || e.Origin != FirmwareOrigin {
				t.Fatalf("AddFirmware(reads %v): no entry usr/lib/firmware/%s", tc.reads, rel)
			}
			data, err := os.ReadFile(e.Source)
			if err != nil {
				t.Fatal(err)
			}
			plainName := kmod.StripCompressionExt(rel)
			isCompressed := plainName != rel
			if wantData := "firmware " + plainName; rel != plain && !isCompressed && string(data) != wantData {
				t.Errorf("AddFirmware(reads %v): %s holds %q, want decompressed %q", tc.reads, rel, data, wantData)
			}
			if isCompressed && compress.Detect(data) == compress.None {
				t.Errorf("AddFirmware(reads %v): %s is not compressed", tc.reads, rel)
			}
		}
		if !strings.Contains(logs.String(), missing) || !strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("AddFirmware: missing firmware %s gave no warning naming it:\n%s", missing, logs.String())
		}
	}
}
