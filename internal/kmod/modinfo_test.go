package kmod

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/testdeb"
	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

func TestParseModInfo(t *testing.T) {
	tests := []struct {
		name    string
		section string
		want    ModInfo
	}{
		{
			name:    "virtio_blk",
			section: "alias=virtio:d00000002v*\x00depends=virtio,virtio_ring\x00retpoline=Y\x00intree=Y\x00name=virtio_blk\x00vermagic=6.1.0-56-amd64 SMP preempt mod_unload modversions \x00",
			want: ModInfo{Name: "virtio_blk", Depends: []string{"virtio", "virtio_ring"},
				Aliases: []string{"virtio:d00000002v*"}, Vermagic: "6.1.0-56-amd64 SMP preempt mod_unload modversions "},
		},
		{
			name:    "leading NUL padding, dashes in depends and name",
			section: "\x00\x00\x00depends=dm-mod\x00name=dm-crypt\x00\x00\x00",
			want:    ModInfo{Name: "dm_crypt", Depends: []string{"dm_mod"}},
		},
		{
			name:    "empty depends",
			section: "depends=\x00name=crc16\x00",
			want:    ModInfo{Name: "crc16"},
		},
		{
			name:    "softdep pre and post, several entries",
			section: "softdep=pre: crypto-crc32c\x00softdep=pre: a b post: c\x00softdep=post: d\x00",
			want:    ModInfo{SoftPre: []string{"crypto-crc32c", "a", "b"}, SoftPost: []string{"c", "d"}},
		},
		{
			name:    "softdep without pre:/post: is ignored like kmod does",
			section: "softdep=gcm\x00",
			want:    ModInfo{},
		},
		{
			name:    "firmware and weakdep",
			section: "firmware=iwlwifi-100-5.ucode\x00firmware=intel/ibt-11-5.sfi\x00weakdep=crc32c\x00weakdep=a b\x00",
			want: ModInfo{Firmware: []string{"iwlwifi-100-5.ucode", "intel/ibt-11-5.sfi"},
				Weak: []string{"crc32c", "a", "b"}},
		},
		{
			name:    "garbage",
			section: "no equals sign\x00=value\x00\xff\xfe",
			want:    ModInfo{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseModInfo([]byte(tt.section)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseModInfo(%q) = %+v, want %+v", tt.section, got, tt.want)
			}
		})
	}
}

func TestParseSoftDepValue(t *testing.T) {
	tests := []struct {
		v         string
		pre, post []string
	}{
		{"pre: a b post: c", []string{"a", "b"}, []string{"c"}},
		{"post: c pre: a", []string{"a"}, []string{"c"}},
		{"  pre:   a\tb  ", []string{"a", "b"}, nil},
		{"x pre: a", []string{"a"}, nil},
		{"", nil, nil},
	}
	for _, tt := range tests {
		pre, post := ParseSoftDepValue(tt.v)
		if !reflect.DeepEqual(pre, tt.pre) || !reflect.DeepEqual(post, tt.post) {
			t.Errorf("ParseSoftDepValue(%q) = %q, %q, want %q, %q", tt.v, pre, post, tt.pre, tt.post)
		}
	}
}

func FuzzParseModInfo(f *testing.F) {
	f.Add([]byte("alias=virtio:d00000002v*\x00depends=virtio,virtio_ring\x00name=virtio_blk\x00"))
	f.Add([]byte("softdep=pre: a post: b\x00firmware=x.bin\x00weakdep=c\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		mi := ParseModInfo(b)
		for _, d := range mi.Depends {
			if d == "" || strings.ContainsAny(d, ",-\x00") {
				t.Fatalf("ParseModInfo(%q): bad dependency %q", b, d)
			}
		}
		for _, l := range [][]string{mi.Aliases, mi.Firmware, mi.SoftPre, mi.SoftPost, mi.Weak} {
			for _, s := range l {
				if s == "" || strings.Contains(s, "\x00") {
					t.Fatalf("ParseModInfo(%q): bad value %q", b, s)
				}
			}
		}
		// Writing the fields back and parsing again gives the same result.
		var buf bytes.Buffer
		for _, fl := range ParseFields(b) {
			buf.WriteString(fl.Key + "=" + fl.Value + "\x00")
		}
		if again := ParseModInfo(buf.Bytes()); !reflect.DeepEqual(again, mi) {
			t.Fatalf("ParseModInfo not stable: %+v then %+v", mi, again)
		}
	})
}

// realModDir returns the module directory of the cached Debian kernel.
func realModDir(t testing.TB) string {
	t.Helper()
	root, kver := testdeb.Kernel(t)
	return filepath.Join(root, "lib", "modules", kver)
}

// modinfoTool runs the system's modinfo to read one field.
func modinfoTool(t *testing.T, field, file string) []string {
	t.Helper()
	out, err := exec.Command(testenv.NeedTool(t, "modinfo", "kmod"), "-F", field, file).Output()
	if err != nil {
		t.Fatalf("modinfo -F %s %s: %v (install Debian package kmod)", field, file, err)
	}
	return strings.Fields(strings.ReplaceAll(string(out), ",", " "))
}

func TestReadModInfoReal(t *testing.T) {
	dir := realModDir(t)
	mods := []string{
		"kernel/drivers/block/virtio_blk.ko",
		"kernel/drivers/md/dm-crypt.ko",
		"kernel/fs/ext4/ext4.ko",
		"kernel/fs/btrfs/btrfs.ko",
		"kernel/drivers/scsi/sr_mod.ko",
		"kernel/drivers/usb/storage/uas.ko",
		"kernel/drivers/net/wireless/intel/iwlwifi/iwlwifi.ko",
		"kernel/drivers/gpu/drm/amd/amdgpu/amdgpu.ko",
	}
	for _, rel := range mods {
		file := filepath.Join(dir, rel)
		mi, err := ReadModInfo(file)
		if err != nil {
			t.Fatalf("ReadModInfo(%s): %v", rel, err)
		}
		if want := NameFromPath(rel); mi.Name != want {
			t.Errorf("ReadModInfo(%s).Name = %q, want %q", rel, mi.Name, want)
		}
		norm := func(l []string) []string {
			for i := range l {
				l[i] = Normalize(l[i])
			}
			return l
		}
		for _, c := range []struct {
			field string
			got   []string
		}{
			{"depends", mi.Depends},
			{"alias", mi.Aliases},
			{"firmware", mi.Firmware},
		} {
			want := modinfoTool(t, c.field, file)
			if c.field == "depends" {
				want = norm(want)
			}
			if len(want) == 0 {
				want = nil
			}
			if !reflect.DeepEqual(c.got, want) {
				t.Errorf("ReadModInfo(%s) %s = %q, modinfo says %q", rel, c.field, c.got, want)
			}
		}
		if !strings.HasPrefix(mi.Vermagic, "6.") {
			t.Errorf("ReadModInfo(%s).Vermagic = %q, want a 6.x vermagic", rel, mi.Vermagic)
		}
	}

	// Values known from the Debian 6.1 kernel.
	mi, err := ReadModInfo(filepath.Join(dir, "kernel/drivers/block/virtio_blk.ko"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"virtio", "virtio_ring"}; !reflect.DeepEqual(mi.Depends, want) {
		t.Errorf("virtio_blk Depends = %q, want %q", mi.Depends, want)
	}
	if want := []string{"virtio:d00000002v*"}; !reflect.DeepEqual(mi.Aliases, want) {
		t.Errorf("virtio_blk Aliases = %q, want %q", mi.Aliases, want)
	}
	mi, err = ReadModInfo(filepath.Join(dir, "kernel/fs/ext4/ext4.ko"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"crypto-crc32c"}; !reflect.DeepEqual(mi.SoftPre, want) {
		t.Errorf("ext4 SoftPre = %q, want %q", mi.SoftPre, want)
	}
	if _, err := ReadModInfo(filepath.Join(dir, "modules.order")); err == nil {
		t.Errorf("ReadModInfo(modules.order) succeeded, want an error for a non-ELF file")
	}
}

// compressTool compresses src into dst with the system tool for c.
func compressTool(t testing.TB, c compress.Format, src, dst string) {
	t.Helper()
	var cmd *exec.Cmd
	switch c {
	case compress.XZ:
		// As the kernel's build does (scripts/Makefile.modinst).
		cmd = exec.Command(testenv.NeedTool(t, "xz", "xz-utils"), "--check=crc32", "--lzma2=dict=1MiB", "-c", src)
	case compress.Zstd:
		cmd = exec.Command(testenv.NeedTool(t, "zstd", "zstd"), "-q", "-c", src)
	case compress.Gzip:
		cmd = exec.Command(testenv.NeedTool(t, "gzip", "gzip"), "-n", "-c", src)
	default:
		t.Fatalf("no tool for %v", c)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v (install Debian packages xz-utils, zstd, gzip)", cmd.Args, err)
	}
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadModInfoCompressed(t *testing.T) {
	src := filepath.Join(realModDir(t), "kernel/drivers/block/virtio_blk.ko")
	plain, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ReadModInfo(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	for _, c := range []compress.Format{compress.XZ, compress.Zstd, compress.Gzip} {
		for _, name := range []string{"virtio_blk.ko" + c.Ext(), "virtio_blk.ko"} {
			// The second name lies about the contents: detection is by magic.
			dst := filepath.Join(tmp, string(c), name)
			os.MkdirAll(filepath.Dir(dst), 0o755)
			compressTool(t, c, src, dst)
			head := make([]byte, 6)
			f, _ := os.Open(dst)
			io.ReadFull(f, head)
			f.Close()
			if got := compress.Detect(head); got != c {
				t.Errorf("Detect(%s) = %v, want %v", dst, got, c)
			}
			got, err := ReadModInfo(dst)
			if err != nil {
				t.Fatalf("ReadModInfo(%s): %v", dst, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ReadModInfo(%s) = %+v, want %+v", dst, got, want)
			}
			rc, err := Decompress(dst)
			if err != nil {
				t.Fatalf("Decompress(%s): %v", dst, err)
			}
			data, err := io.ReadAll(rc)
			if err != nil {
				t.Fatalf("Decompress(%s): read: %v", dst, err)
			}
			if err := rc.Close(); err != nil {
				t.Errorf("Decompress(%s): close: %v", dst, err)
			}
			if !bytes.Equal(data, plain) {
				t.Errorf("Decompress(%s) gave %d bytes, want the %d of the original", dst, len(data), len(plain))
			}
			os.Remove(dst)
		}
	}

	// A corrupted stream is an error naming the file.
	bad := filepath.Join(tmp, "bad.ko.xz")
	compressTool(t, compress.XZ, src, bad)
	data, _ := os.ReadFile(bad)
	data[len(data)/2] ^= 0xff
	os.WriteFile(bad, data, 0o644)
	if _, err := ReadModInfo(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("ReadModInfo(corrupt xz) = %v, want an error naming %s", err, bad)
	}
}

func TestNames(t *testing.T) {
	tests := []struct{ in, name string }{
		{"kernel/drivers/usb/storage/usb-storage.ko", "usb_storage"},
		{"kernel/arch/x86/crypto/crc32c-intel.ko.xz", "crc32c_intel"},
		{"ext4.ko.zst", "ext4"},
		{"/lib/modules/6.1/kernel/fs/fat/vfat.ko.gz", "vfat"},
	}
	for _, tt := range tests {
		if got := NameFromPath(tt.in); got != tt.name {
			t.Errorf("NameFromPath(%q) = %q, want %q", tt.in, got, tt.name)
		}
		if !IsModuleFile(tt.in) {
			t.Errorf("IsModuleFile(%q) = false, want true", tt.in)
		}
	}
	for _, s := range []string{"modules.dep", "foo.ko.bz2", "foo.xz"} {
		if IsModuleFile(s) {
			t.Errorf("IsModuleFile(%q) = true, want false", s)
		}
	}
	aliases := []struct{ in, want string }{
		{"platform:leds-gpio", "platform:leds_gpio"},
		{"usb:v0BC2p2[0-9A-F]-*", "usb:v0BC2p2[0-9A-F]_*"},
		{"of:N*T*Cfsl,imx6q-pcie", "of:N*T*Cfsl,imx6q_pcie"},
		{"[a-", "[a-"},
	}
	for _, tt := range aliases {
		if got := NormalizeAlias(tt.in); got != tt.want {
			t.Errorf("NormalizeAlias(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
