package image

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestParseCompression(t *testing.T) {
	tests := []struct {
		in      string
		want    Compression
		wantErr bool
	}{
		{"", Zstd, false},
		{"zstd", Zstd, false},
		{"gzip", Gzip, false},
		{"lz4", LZ4, false},
		{"xz", XZ, false},
		{"none", None, false},
		{"bzip2", "", true},
		{"ZSTD", "", true},
		{"zst", "", true},
	}
	for _, tt := range tests {
		got, err := ParseCompression(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseCompression(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "zstd, gzip, lz4, xz, none") {
			t.Errorf("ParseCompression(%q) error %q does not list the valid names", tt.in, err)
		}
	}
	if _, err := NewCompressor(io.Discard, "brotli"); err == nil {
		t.Error(`NewCompressor("brotli") = nil error`)
	}
}

// testData returns n bytes that compress like an initramfs: text, runs and
// incompressible stretches.
func testData(n int) []byte { return seededData(n, 7) }

// seededData is testData with another sequence for each seed.
func seededData(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 8))
	var b bytes.Buffer
	for b.Len() < n {
		switch rng.IntN(3) {
		case 0:
			for range rng.IntN(2000) {
				b.WriteByte(byte(rng.Uint32()))
			}
		case 1:
			b.WriteString(strings.Repeat("ELF module symbol table entry ", rng.IntN(300)))
		case 2:
			b.Write(make([]byte, rng.IntN(5000)))
		}
	}
	return b.Bytes()[:n]
}

func compress(t testing.TB, c Compression, data []byte) []byte {
	t.Helper()
	var out closeRecorder
	zw, err := NewCompressor(&out, c)
	if err != nil {
		t.Fatalf("NewCompressor(%s) = %v", c, err)
	}
	// Odd-sized writes, as the cpio writer makes them.
	for p := data; len(p) > 0; {
		n := min(len(p), 12345)
		if _, err := zw.Write(p[:n]); err != nil {
			t.Fatalf("%s: Write = %v", c, err)
		}
		p = p[n:]
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("%s: Close = %v", c, err)
	}
	if out.closed {
		t.Errorf("%s: closing the compressor closed the underlying writer", c)
	}
	return out.Bytes()
}

type closeRecorder struct {
	bytes.Buffer
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

// TestCompressorSystemTools decompresses our output with the system tools
// and checks the settings the kernel needs.
func TestCompressorSystemTools(t *testing.T) {
	tests := []struct {
		c      Compression
		size   int
		magic  []byte
		random bool // incompressible input
	}{
		{Zstd, 3 << 20, []byte{0x28, 0xb5, 0x2f, 0xfd}, false},
		{Gzip, 3 << 20, []byte{0x1f, 0x8b}, false},
		{XZ, 3 << 20, []byte{0xfd, '7', 'z', 'X', 'Z', 0}, false},
		// More than one 8 MiB legacy chunk.
		{LZ4, 9 << 20, []byte{0x02, 0x21, 0x4c, 0x18}, false},
		// Legacy chunks have no "stored" flag: incompressible chunks must
		// still be LZ4 sequences.
		{LZ4, 9 << 20, []byte{0x02, 0x21, 0x4c, 0x18}, true},
		{Zstd, 1 << 20, []byte{0x28, 0xb5, 0x2f, 0xfd}, true},
		{None, 1 << 20, nil, false},
	}
	for _, tt := range tests {
		name := string(tt.c)
		if tt.random {
			name += "-random"
		}
		t.Run(name, func(t *testing.T) {
			data := testData(tt.size)
			if tt.random {
				rng := rand.New(rand.NewPCG(3, 4))
				for i := range data {
					data[i] = byte(rng.Uint32())
				}
			}
			z := compress(t, tt.c, data)
			if !bytes.HasPrefix(z, tt.magic) {
				t.Errorf("output starts with % x, want % x", z[:8], tt.magic)
			}
			if tt.c == None {
				if !bytes.Equal(z, data) {
					t.Error("none changed the data")
				}
				return
			}
			name, args := decompressCmd(tt.c)
			if got := run(t, "", z, name, args...); !bytes.Equal(got, data) {
				t.Errorf("%s %v: %d bytes differ from the %d input bytes", name, args, len(got), len(data))
			}
			if !tt.random && len(z) >= len(data) {
				t.Errorf("compressed %d bytes to %d", len(data), len(z))
			}
			file := filepath.Join(t.TempDir(), "img."+string(tt.c))
			if err := os.WriteFile(file, z, 0o644); err != nil {
				t.Fatal(err)
			}
			switch tt.c {
			case XZ:
				info := string(run(t, "", nil, "xz", "-lvv", file))
				for _, want := range []string{"Check:             CRC32", "--lzma2=dict=1MiB"} {
					if !strings.Contains(info, want) {
						t.Errorf("xz -lvv lacks %q:\n%s", want, info)
					}
				}
			case Zstd:
				info := string(run(t, "", nil, "zstd", "-lv", file))
				m := regexp.MustCompile(`Window Size: .*\((\d+) B\)`).FindStringSubmatch(info)
				if m == nil {
					t.Fatalf("zstd -lv shows no window size:\n%s", info)
				}
				if w, _ := strconv.Atoi(m[1]); w > 8<<20 {
					t.Errorf("zstd window %d bytes, want at most 8 MiB", w)
				}
			}
		})
	}
}

// TestZstdDeterministic checks that the zstd output does not depend on the
// number of CPUs: more than one 32 MiB job of input, compressed with
// different concurrency.
func TestZstdDeterministic(t *testing.T) {
	data := testData(40 << 20)
	var outs [][]byte
	for _, conc := range []int{1, 2, 5} {
		var buf bytes.Buffer
		zw, err := newZstd(&buf, conc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := zw.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, buf.Bytes())
	}
	for i := 1; i < len(outs); i++ {
		if !bytes.Equal(outs[0], outs[i]) {
			t.Errorf("zstd output with concurrency %d differs from concurrency 1 (%d vs %d bytes)", []int{1, 2, 5}[i], len(outs[i]), len(outs[0]))
		}
	}
}
