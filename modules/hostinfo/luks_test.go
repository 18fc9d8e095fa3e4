package hostinfo

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/mountinfo"
	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

// luksImage formats a 20 MiB file with the system's cryptsetup (Debian
// package cryptsetup-bin) and returns its path.
func luksImage(t *testing.T, args ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "luks.img")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 20<<20); err != nil {
		t.Fatal(err)
	}
	argv := append([]string{"luksFormat", "--batch-mode", "--pbkdf-force-iterations", "1000", "--disable-locks", "--key-file=-"}, args...)
	argv = append(argv, p)
	cmd := exec.Command(testenv.NeedTool(t, "cryptsetup", "cryptsetup-bin"), argv...)
	cmd.Stdin = strings.NewReader("passphrase")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cryptsetup %s: %v\n%s(install the Debian package cryptsetup-bin)", strings.Join(argv, " "), err, out)
	}
	return p
}

func TestParseLUKS(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want LUKS
	}{
		{"luks2 default", []string{"--type", "luks2", "--pbkdf", "pbkdf2"},
			LUKS{Version: 2, Ciphers: []string{"aes-xts-plain64"}}},
		{"luks2 cbc-essiv", []string{"--type", "luks2", "--pbkdf", "pbkdf2", "--cipher", "aes-cbc-essiv:sha256", "--key-size", "256"},
			LUKS{Version: 2, Ciphers: []string{"aes-cbc-essiv:sha256"}}},
		{"luks1 cbc-essiv", []string{"--type", "luks1", "--cipher", "aes-cbc-essiv:sha256", "--key-size", "256"},
			LUKS{Version: 1, Ciphers: []string{"aes-cbc-essiv:sha256"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Open(luksImage(t, tt.args...))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := ParseLUKS(f)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseLUKS(cryptsetup luksFormat %q) = %+v, %v, want %+v", tt.args, got, err, tt.want)
			}
		})
	}
}

// TestParseLUKSDamaged feeds ParseLUKS a real LUKS2 header (cryptsetup's)
// cut short or with one field changed, and data that is not LUKS.
func TestParseLUKSDamaged(t *testing.T) {
	data, err := os.ReadFile(luksImage(t, "--type", "luks2", "--pbkdf", "pbkdf2"))
	if err != nil {
		t.Fatal(err)
	}
	hdrSize := binary.BigEndian.Uint64(data[8:16])
	if hdrSize <= luks2JSONOffset || hdrSize > LUKSHeaderMax {
		t.Fatalf("cryptsetup wrote a LUKS2 header of size %d, want (%d, %d]", hdrSize, luks2JSONOffset, LUKSHeaderMax)
	}
	// header returns the binary header and JSON area, size bytes long
	// (zero padded), with hdr_size set to hdr and the JSON area replaced
	// by area unless it is nil.
	header := func(size int, hdr uint64, area []byte) []byte {
		b := make([]byte, max(size, int(hdrSize)))
		copy(b, data[:hdrSize])
		binary.BigEndian.PutUint64(b[8:16], hdr)
		if area != nil {
			clear(b[luks2JSONOffset:])
			copy(b[luks2JSONOffset:], area)
		}
		return b[:size]
	}
	notLUKS := func(err error) bool { return errors.Is(err, ErrNotLUKS) }
	has := func(sub string) func(error) bool {
		return func(err error) bool { return err != nil && !notLUKS(err) && strings.Contains(err.Error(), sub) }
	}
	badSize := has("bad header size")
	var syntax *json.SyntaxError
	for _, tc := range []struct {
		name string
		in   []byte
		ok   func(error) bool
		want string
	}{
		{"zeros", make([]byte, 8192), notLUKS, "ErrNotLUKS"},
		{"short", []byte("LUK"), notLUKS, "ErrNotLUKS"},
		{"ext4-ish", append(make([]byte, 1080), 0x53, 0xef), notLUKS, "ErrNotLUKS"},
		{"empty", nil, notLUKS, "ErrNotLUKS"},
		{"version-9", append(append([]byte(nil), data[:6]...), append([]byte{0, 9}, data[8:4096]...)...), has("unknown version 9"), "unknown version 9"},
		{"binary header cut short", data[:2048], has("luks2 header"), "a short luks2 header"},
		{"no json area", data[:4096], func(err error) bool { return errors.Is(err, io.EOF) }, "EOF on the JSON area"},
		{"json area cut short", data[:8192], func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }, "unexpected EOF on the JSON area"},
		{"hdr_size 0", header(int(hdrSize), 0, nil), badSize, "a bad header size"},
		{"hdr_size 4096 (no json area)", header(int(hdrSize), luks2JSONOffset, nil), badSize, "a bad header size"},
		{"hdr_size above 4 MiB", header(int(hdrSize), LUKSHeaderMax+luks2JSONOffset, nil), badSize, "a bad header size"},
		{"hdr_size 2^63", header(int(hdrSize), 1<<63, nil), badSize, "a bad header size"},
		{"invalid json", header(int(hdrSize), hdrSize, []byte("{not json")), func(err error) bool { return errors.As(err, &syntax) }, "a *json.SyntaxError"},
		{"json of the wrong shape", header(int(hdrSize), hdrSize, []byte(`{"segments":[1,2]}`)), has("luks2 json area"), "a luks2 json area error"},
		{"json naming no cipher", header(int(hdrSize), hdrSize, []byte(`{"segments":{"0":{"type":"linear"}},"keyslots":{}}`)), has("no crypt segment"), "no crypt segment"},
	} {
		got, err := ParseLUKS(bytes.NewReader(tc.in))
		if !tc.ok(err) {
			t.Errorf("ParseLUKS(%s) = %+v, %v, want %s", tc.name, got, err, tc.want)
		}
	}

	// The accepted bounds: the smallest JSON area cryptsetup allows
	// (16 KiB header) and the largest (4 MiB), the real JSON zero padded.
	for _, size := range []uint64{16 << 10, LUKSHeaderMax} {
		if size < hdrSize {
			continue // cryptsetup's JSON would not fit
		}
		got, err := ParseLUKS(bytes.NewReader(header(int(size), size, nil)))
		if want := []string{"aes-xts-plain64"}; err != nil || got.Version != 2 || !reflect.DeepEqual(got.Ciphers, want) {
			t.Errorf("ParseLUKS(hdr_size %d) = %+v, %v, want LUKS2 with ciphers %q", size, got, err, want)
		}
	}
}

func TestCipherAlgorithms(t *testing.T) {
	for spec, want := range map[string][]string{
		"aes-xts-plain64":                      {"aes", "xts"},
		"aes-cbc-essiv:sha256":                 {"aes", "cbc", "essiv", "sha256"},
		"serpent-cbc-lmk":                      {"serpent", "cbc", "md5"},
		"twofish-xts-plain64":                  {"twofish", "xts"},
		"xchacha20,aes-adiantum-plain64":       {"xchacha20", "aes", "adiantum"},
		"aes:64-cbc-lmk":                       {"aes", "cbc", "md5"},
		"aes":                                  {"aes", "cbc"},
		"capi:xts(aes)-plain64":                {"xts", "aes"},
		"capi:adiantum(xchacha12,aes)-plain64": {"adiantum", "xchacha12", "aes"},
		"capi:cbc(aes)-essiv:sha256":           {"cbc", "aes", "essiv", "sha256"},
	} {
		if got := CipherAlgorithms(spec); !reflect.DeepEqual(got, want) {
			t.Errorf("CipherAlgorithms(%q) = %q, want %q", spec, got, want)
		}
	}
}

// procCrypto is an excerpt of a Debian 6.1 guest's /proc/crypto with a
// LUKS2 (aes-xts-plain64) root open.
const procCrypto = `name         : xts(aes)
driver       : xts-aes-aesni
module       : aesni_intel
priority     : 401
refcnt       : 2
selftest     : passed
internal     : no
type         : skcipher
async        : yes

name         : aes
driver       : aes-aesni
module       : aesni_intel
priority     : 300
type         : cipher

name         : crc32c
driver       : crc32c-intel
module       : crc32c_intel
priority     : 200
type         : shash

name         : aes
driver       : aes-generic
module       : kernel
priority     : 100
type         : cipher

name         : __xts(aes)
driver       : cryptd(__xts-aes-aesni)
module       : cryptd
type         : skcipher
`

func TestParseCrypto(t *testing.T) {
	got, err := ParseCrypto(strings.NewReader(procCrypto))
	if err != nil {
		t.Fatal(err)
	}
	want := []CryptoAlg{
		{"xts(aes)", "xts-aes-aesni", "aesni_intel", "skcipher"},
		{"aes", "aes-aesni", "aesni_intel", "cipher"},
		{"crc32c", "crc32c-intel", "crc32c_intel", "shash"},
		{"aes", "aes-generic", "kernel", "cipher"},
		{"__xts(aes)", "cryptd(__xts-aes-aesni)", "cryptd", "skcipher"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseCrypto = %+v, want %+v", got, want)
	}
	if _, err := ParseCrypto(strings.NewReader("garbage\n")); err == nil {
		t.Errorf("ParseCrypto(garbage) = nil error")
	}
	// This machine's own list parses.
	if f, err := os.Open("/proc/crypto"); err == nil {
		defer f.Close()
		if algs, err := ParseCrypto(f); err != nil || len(algs) == 0 {
			t.Errorf("ParseCrypto(/proc/crypto) = %d entries, %v", len(algs), err)
		}
	}
}

// TestRootChainLUKSLVM walks LVM on LUKS2 (root LV vgc-root on the LUKS
// device dm-0 on vda1), as in the e2e fixture, with and without the device.
func TestRootChainLUKSLVM(t *testing.T) {
	vda := virtioDisk("vda", "virtio1", "0000:00:04.0", "254:1")
	dm := sysfs{
		links: map[string]string{
			"dev/block/253:1":                        "../../devices/virtual/block/dm-1",
			"devices/virtual/block/dm-1/slaves/dm-0": "../../dm-0",
			"devices/virtual/block/dm-0/slaves/vda1": "../../../../pci0000:00/0000:00:04.0/virtio1/block/vda/vda1",
		},
		files: map[string]string{
			"devices/virtual/block/dm-1/dm/uuid": "LVM-Zq3kR1wYpE2cT7vB9nM0aS5dF6gH8jK1Lq4wE7rT2yU5iO8pA3sD6fG9hJ2kL5zX",
			"devices/virtual/block/dm-1/dm/name": "vgc-root",
			"devices/virtual/block/dm-0/dm/uuid": "CRYPT-LUKS2-7a8b9c0d1e2f4a3b8c4d5e6f7a8b9c0d-luks-7a8b9c0d",
			"devices/virtual/block/dm-0/dm/name": "luks-7a8b9c0d",
		},
	}
	sys := merge(vda, dm).write(t)
	root := mountinfo.Mount{Dev: "253:1", FSType: "ext4", Source: "/dev/mapper/vgc-root"}
	lvm := "dm-1 ← dm-0"
	base := []Need{
		{"fs-ext4", "root filesystem ext4", RootFS},
		{"dm_mod", "root device chain (dm-1 ← device-mapper)", RootLayer},
		{"dm_mod", "root device chain (" + lvm + " ← device-mapper)", RootLayer},
		{"dm_crypt", "root device chain (" + lvm + " ← dm-crypt luks-7a8b9c0d)", RootLayer},
	}
	tail := []Need{
		{"virtio_blk", "root device chain (" + lvm + " ← vda1 ← vda ← virtio1 ← virtio_blk)", RootDriver},
		{"virtio_pci", "root device chain (" + lvm + " ← vda1 ← vda ← 0000:00:04.0 ← virtio_pci)", RootDriver},
	}

	// Live host: the LUKS header of dm-0's slave is read from /dev.
	dev := t.TempDir()
	img, err := os.ReadFile(luksImage(t, "--type", "luks2", "--pbkdf", "pbkdf2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dev, "vda1"), img[:64<<10], 0o600); err != nil {
		t.Fatal(err)
	}
	cipher := "root device chain (" + lvm + " ← LUKS2 cipher aes-xts-plain64)"
	want := append(append(append([]Need(nil), base...),
		Need{"crypto-aes", cipher, RootCrypto},
		Need{"crypto-xts", cipher, RootCrypto},
		Need{"algif_skcipher", "root device chain (" + lvm + " ← LUKS2 keyslots, decrypted by cryptsetup through AF_ALG)", RootCrypto}),
		tail...)
	got, err := RootChain(Dirs{Sys: sys, Dev: dev}, root)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("RootChain(LVM on LUKS2, with /dev) = %v\n%s\nwant\n%s", err, show(got), show(want))
	}

	// Recorded system: no device, /proc/crypto names the cipher modules.
	proc := t.TempDir()
	if err := os.WriteFile(filepath.Join(proc, "crypto"), []byte(procCrypto), 0o644); err != nil {
		t.Fatal(err)
	}
	want = append(append(append([]Need(nil), base...),
		Need{"aesni_intel", "root device chain (" + lvm + " ← dm-crypt, /proc/crypto: xts(aes) by xts-aes-aesni)", RootCrypto},
		Need{"aesni_intel", "root device chain (" + lvm + " ← dm-crypt, /proc/crypto: aes by aes-aesni)", RootCrypto},
		Need{"cryptd", "root device chain (" + lvm + " ← dm-crypt, /proc/crypto: __xts(aes) by cryptd(__xts-aes-aesni))", RootCrypto}),
		tail...)
	got, err = RootChain(Dirs{Sys: sys, Proc: proc}, root)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("RootChain(LVM on LUKS2, recorded) = %v\n%s\nwant\n%s", err, show(got), show(want))
	}
	// A device that is not LUKS falls back to /proc/crypto too.
	if err := os.WriteFile(filepath.Join(dev, "vda1"), make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err = RootChain(Dirs{Sys: sys, Proc: proc, Dev: dev}, root); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("RootChain(LVM on a non-LUKS crypt device) = %v\n%s\nwant\n%s", err, show(got), show(want))
	}

	if got := DMName(sys, "/dev/dm-1"); got != "" {
		t.Errorf("DMName(no class/block link) = %q, want \"\"", got)
	}
	if err := os.MkdirAll(filepath.Join(sys, "class", "block"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../devices/virtual/block/dm-1", filepath.Join(sys, "class", "block", "dm-1")); err != nil {
		t.Fatal(err)
	}
	for dev, want := range map[string]string{"/dev/dm-1": "vgc-root", "/dev/vda1": "", "/dev/dm-7": "", "dm-1": ""} {
		if got := DMName(sys, dev); got != want {
			t.Errorf("DMName(%s) = %q, want %q", dev, got, want)
		}
	}

	// Detect reports the layers.
	if err := os.MkdirAll(filepath.Join(proc, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(proc, "modules"), []byte("dm_crypt 1 0 - Live 0x0\n"), 0o644)
	os.WriteFile(filepath.Join(proc, "self", "mountinfo"), []byte("1 0 253:1 / / rw - ext4 /dev/mapper/vgc-root rw\n"), 0o644)
	h, err := Detect(Dirs{Proc: proc, Sys: sys})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{LayerLVM, LayerCrypt}; !reflect.DeepEqual(h.Layers, want) {
		t.Errorf("Detect(LVM on LUKS).Layers = %q, want %q", h.Layers, want)
	}
}

func TestLVMTargets(t *testing.T) {
	const u = "LVM-Zq3kR1wYpE2cT7vB9nM0aS5dF6gH8jK1Lq4wE7rT2yU5iO8pA3sD6fG9hJ2kL5zX"
	for _, tc := range []struct {
		name, uuid string
		want       []string
	}{
		{"vg-root", u, nil},
		{"vg-root_rimage_0", u, []string{"dm_raid", "raid1", "raid10", "raid456"}},
		{"vg-root_rmeta_1", u, []string{"dm_raid", "raid1", "raid10", "raid456"}},
		{"vg-root_mimage_1", u, []string{"dm_mirror"}},
		{"vg-pool_tdata", u, []string{"dm_thin_pool"}},
		{"vg-pool-tpool", u + "-tpool", []string{"dm_thin_pool"}},
		{"vg-root_corig", u, []string{"dm_cache", "dm_cache_smq"}},
		{"vg-root-real", u + "-real", []string{"dm_snapshot"}},
		{"vg-snap-cow", u + "-cow", []string{"dm_snapshot"}},
		{"vg-vpool0_vdata", u, []string{"dm_vdo"}},
		{"vg-root_rimage_0_imeta", u, []string{"dm_raid", "raid1", "raid10", "raid456", "dm_integrity"}},
		{"vg-root_wcorig", u, []string{"dm_writecache"}},
	} {
		if got := lvmTargets(tc.name, tc.uuid); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("lvmTargets(%q, %q) = %q, want %q", tc.name, tc.uuid, got, tc.want)
		}
	}
}
