package luks

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/luks/lukstest"
)

func TestParseHeader(t *testing.T) {
	const uuid = "0e5f2a71-4444-4555-b666-c77788889999"
	// hdr is a binary header with magic, version and the UUID; LUKS1 gets
	// a cipher, LUKS2 a label and hdr_size 16 KiB.
	hdr := func(magic string, version uint16) []byte {
		b := make([]byte, 256)
		copy(b, magic)
		binary.BigEndian.PutUint16(b[6:], version)
		copy(b[168:], uuid)
		if version == 1 {
			copy(b[8:], "aes")
			copy(b[40:], "xts-plain64 ")
		} else {
			binary.BigEndian.PutUint64(b[8:], 16<<10)
			copy(b[24:], "cryptroot ")
		}
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want Header
		err  error
	}{
		{"luks1", hdr(Magic, 1), Header{Version: 1, UUID: uuid, CipherName: "aes", CipherMode: "xts-plain64"}, nil},
		{"luks2", hdr(Magic, 2), Header{Version: 2, UUID: uuid, Label: "cryptroot", Size: 16 << 10}, nil},
		{"luks2 secondary", hdr(SecondaryMagic, 2), Header{Version: 2, Secondary: true, UUID: uuid, Label: "cryptroot", Size: 16 << 10}, nil},
		{"unknown version", hdr(Magic, 9), Header{Version: 9, UUID: uuid}, nil},
		{"secondary of luks1", hdr(SecondaryMagic, 1), Header{}, ErrNotLUKS},
		{"cut before the uuid ends", hdr(Magic, 2)[:207], Header{}, ErrNotLUKS},
		{"no magic", make([]byte, 256), Header{}, ErrNotLUKS},
		{"nil", nil, Header{}, ErrNotLUKS},
	} {
		got, err := ParseHeader(tc.in)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("%s: ParseHeader = %+v, %v, want %+v, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestRead(t *testing.T) {
	const uuid = "1f6a3b82-5555-4666-8777-d8889999aaaa"
	tests := []struct {
		name    string
		args    []string
		version int
		label   string
		ciphers []string
	}{
		{"luks2 default", []string{"--type", "luks2", "--pbkdf", "pbkdf2", "--label", "cryptroot"},
			2, "cryptroot", []string{"aes-xts-plain64"}},
		{"luks2 cbc-essiv", []string{"--type", "luks2", "--pbkdf", "pbkdf2", "--cipher", "aes-cbc-essiv:sha256", "--key-size", "256"},
			2, "", []string{"aes-cbc-essiv:sha256"}},
		{"luks1 cbc-essiv", []string{"--type", "luks1", "--cipher", "aes-cbc-essiv:sha256", "--key-size", "256"},
			1, "", []string{"aes-cbc-essiv:sha256"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Open(lukstest.Format(t, append([]string{"--uuid", uuid}, tt.args...)...))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := Read(f)
			if err != nil || got.Version != tt.version || got.UUID != uuid || got.Label != tt.label ||
				!reflect.DeepEqual(got.Ciphers, tt.ciphers) || got.Integrity != nil {
				t.Errorf("Read(cryptsetup luksFormat %q) = %+v, %v, want version %d, UUID %s, label %q, ciphers %q, no integrity",
					tt.args, got, err, tt.version, uuid, tt.label, tt.ciphers)
			}
		})
	}
}

// TestReadDamaged feeds Read a real LUKS2 header (cryptsetup's) cut short
// or with one field changed, and data that is not LUKS.
func TestReadDamaged(t *testing.T) {
	data, err := os.ReadFile(lukstest.Format(t, "--type", "luks2", "--pbkdf", "pbkdf2"))
	if err != nil {
		t.Fatal(err)
	}
	hdrSize := binary.BigEndian.Uint64(data[8:16])
	if hdrSize <= jsonOffset || hdrSize > HeaderMax {
		t.Fatalf("cryptsetup wrote a LUKS2 header of size %d, want (%d, %d]", hdrSize, jsonOffset, HeaderMax)
	}
	// header returns the binary header and JSON area, size bytes long
	// (zero padded), with hdr_size set to hdr and the JSON area replaced
	// by area unless it is nil.
	header := func(size int, hdr uint64, area []byte) []byte {
		b := make([]byte, max(size, int(hdrSize)))
		copy(b, data[:hdrSize])
		binary.BigEndian.PutUint64(b[8:16], hdr)
		if area != nil {
			clear(b[jsonOffset:])
			copy(b[jsonOffset:], area)
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
		{"secondary header at 0", append([]byte(SecondaryMagic), data[6:8192]...), notLUKS, "ErrNotLUKS"},
		{"version-9", append(append([]byte(nil), data[:6]...), append([]byte{0, 9}, data[8:4096]...)...), has("unknown version 9"), "unknown version 9"},
		{"binary header cut short", data[:2048], has("luks2 header"), "a short luks2 header"},
		{"no json area", data[:4096], func(err error) bool { return errors.Is(err, io.EOF) }, "EOF on the JSON area"},
		{"json area cut short", data[:8192], func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }, "unexpected EOF on the JSON area"},
		{"hdr_size 0", header(int(hdrSize), 0, nil), badSize, "a bad header size"},
		{"hdr_size 4096 (no json area)", header(int(hdrSize), jsonOffset, nil), badSize, "a bad header size"},
		{"hdr_size above 4 MiB", header(int(hdrSize), HeaderMax+jsonOffset, nil), badSize, "a bad header size"},
		{"hdr_size 2^63", header(int(hdrSize), 1<<63, nil), badSize, "a bad header size"},
		{"invalid json", header(int(hdrSize), hdrSize, []byte("{not json")), func(err error) bool { return errors.As(err, &syntax) }, "a *json.SyntaxError"},
		{"json of the wrong shape", header(int(hdrSize), hdrSize, []byte(`{"segments":[1,2]}`)), has("luks2 json area"), "a luks2 json area error"},
		{"json naming no cipher", header(int(hdrSize), hdrSize, []byte(`{"segments":{"0":{"type":"linear"}},"keyslots":{}}`)), has("no crypt segment"), "no crypt segment"},
	} {
		got, err := Read(bytes.NewReader(tc.in))
		if !tc.ok(err) {
			t.Errorf("Read(%s) = %+v, %v, want %s", tc.name, got, err, tc.want)
		}
	}

	// The accepted bounds: the smallest JSON area cryptsetup allows
	// (16 KiB header) and the largest (4 MiB), the real JSON zero padded.
	for _, size := range []uint64{16 << 10, HeaderMax} {
		if size < hdrSize {
			continue // cryptsetup's JSON would not fit
		}
		got, err := Read(bytes.NewReader(header(int(size), size, nil)))
		if want := []string{"aes-xts-plain64"}; err != nil || got.Version != 2 || !reflect.DeepEqual(got.Ciphers, want) {
			t.Errorf("Read(hdr_size %d) = %+v, %v, want LUKS2 with ciphers %q", size, got, err, want)
		}
	}
}
