package compress

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestByName(t *testing.T) {
	tests := []struct {
		in      string
		want    Format
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
		got, err := ByName(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ByName(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "zstd, gzip, lz4, xz, none") {
			t.Errorf("ByName(%q) error %q does not list the valid names", tt.in, err)
		}
	}
	for _, f := range []Format{"brotli", BZip2} {
		if _, err := NewWriter(f, io.Discard); err == nil {
			t.Errorf("NewWriter(%q) = nil error", f)
		}
	}
}

func TestDetectAndExt(t *testing.T) {
	tests := []struct {
		head []byte
		want Format
		ext  string
	}{
		{[]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0}, Zstd, ".zst"},
		{[]byte{0x1f, 0x8b, 8}, Gzip, ".gz"},
		{[]byte{0x1f, 0x9e}, Gzip, ".gz"},
		{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, XZ, ".xz"},
		{[]byte{0xfd, '7', 'z', 'X', 'Z'}, None, ""}, // too short
		{[]byte{0x02, 0x21, 0x4c, 0x18}, LZ4, ".lz4"},
		{[]byte{0x04, 0x22, 0x4d, 0x18}, LZ4Frame, ".lz4"},
		{[]byte("BZh91AY"), BZip2, ".bz2"},
		{[]byte{0x5d, 0, 0, 0x80}, LZMA, ".lzma"},
		{[]byte{0x89, 'L', 'Z', 'O', 0}, LZO, ".lzo"},
		{[]byte("\x7fELF\x02\x01"), None, ""},
		{[]byte("070701"), None, ""},
		{nil, None, ""},
	}
	for _, tt := range tests {
		got := Detect(tt.head)
		if got != tt.want || got.Ext() != tt.ext {
			t.Errorf("Detect(% x) = %q (ext %q), want %q (ext %q)", tt.head, got, got.Ext(), tt.want, tt.ext)
		}
		if tt.want == LZ4Frame {
			continue // shares .lz4 with the legacy format
		}
		if f, ok := ByExt(tt.ext); !ok || f != tt.want {
			t.Errorf("ByExt(%q) = %q, %v; want %q", tt.ext, f, ok, tt.want)
		}
	}
	if f, ok := ByExt(".zip"); ok {
		t.Errorf("ByExt(.zip) = %q, true; want not found", f)
	}
}

// TestReaders reads each format from our writer or a system tool, through
// NewReader and DetectReader.
func TestReaders(t *testing.T) {
	data := testData(1 << 20)
	tests := []struct {
		f    Format
		tool []string // nil: NewWriter
	}{
		{None, nil},
		{Zstd, nil},
		{Gzip, nil},
		{XZ, nil},
		{LZ4, nil},
		{Zstd, []string{"zstd", "-c", "-19"}},
		{Gzip, []string{"gzip", "-c", "-n"}},
		{XZ, []string{"xz", "-c"}},
		{LZ4, []string{"lz4", "-l", "-c"}},
		{LZ4Frame, []string{"lz4", "-c"}},
		{BZip2, []string{"bzip2", "-c"}},
		{LZMA, []string{"lzma", "-c"}},
	}
	for _, tt := range tests {
		name := string(tt.f)
		if tt.tool != nil {
			name += "-" + tt.tool[0]
		}
		t.Run(name, func(t *testing.T) {
			var z []byte
			if tt.tool == nil {
				z = compress(t, tt.f, data)
			} else {
				z = run(t, data, tt.tool[0], tt.tool[1:]...)
			}
			zr, err := NewReader(tt.f, bytes.NewReader(z))
			if err != nil {
				t.Fatalf("NewReader = %v", err)
			}
			if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, data) {
				t.Errorf("NewReader: read %d bytes, %v; want the %d input bytes", len(got), err, len(data))
			}
			if err := zr.Close(); err != nil {
				t.Errorf("Close = %v", err)
			}
			dr, f, err := DetectReader(bytes.NewReader(z))
			if err != nil || f != tt.f {
				t.Fatalf("DetectReader = %q, %v; want %q", f, err, tt.f)
			}
			defer dr.Close()
			if got, err := io.ReadAll(dr); err != nil || !bytes.Equal(got, data) {
				t.Errorf("DetectReader: read %d bytes, %v; want the %d input bytes", len(got), err, len(data))
			}
		})
	}
	if _, err := NewReader(LZO, bytes.NewReader(nil)); err == nil {
		t.Error("NewReader(lzo) = nil error")
	}
}

// TestWriterSystemTools decompresses our output with the system tools
// and checks the settings the kernel needs.
func TestWriterSystemTools(t *testing.T) {
	tests := []struct {
		f      Format
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
		name := string(tt.f)
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
			z := compress(t, tt.f, data)
			if !bytes.HasPrefix(z, tt.magic) {
				t.Errorf("output starts with % x, want % x", z[:8], tt.magic)
			}
			if tt.f == None {
				if !bytes.Equal(z, data) {
					t.Error("none changed the data")
				}
				return
			}
			name := map[Format]string{Zstd: "zstd", Gzip: "gzip", XZ: "xz", LZ4: "lz4"}[tt.f]
			if got := run(t, z, name, "-dc"); !bytes.Equal(got, data) {
				t.Errorf("%s -dc: %d bytes differ from the %d input bytes", name, len(got), len(data))
			}
			if !tt.random && len(z) >= len(data) {
				t.Errorf("compressed %d bytes to %d", len(data), len(z))
			}
			file := filepath.Join(t.TempDir(), "img"+tt.f.Ext())
			if err := os.WriteFile(file, z, 0o644); err != nil {
				t.Fatal(err)
			}
			switch tt.f {
			case XZ:
				info := string(run(t, nil, "xz", "-lvv", file))
				for _, want := range []string{"Check:             CRC32", "--lzma2=dict=1MiB"} {
					if !strings.Contains(info, want) {
						t.Errorf("xz -lvv lacks %q:\n%s", want, info)
					}
				}
			case Zstd:
				info := string(run(t, nil, "zstd", "-lv", file))
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

// testData returns n bytes that compress like an initramfs: text, runs and
// incompressible stretches.
func testData(n int) []byte {
	rng := rand.New(rand.NewPCG(7, 8))
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

// compress compresses data with NewWriter in odd-sized writes, as the cpio
// writer makes them, and checks that Close leaves the output open.
func compress(t testing.TB, f Format, data []byte) []byte {
	t.Helper()
	var out closeRecorder
	zw, err := NewWriter(f, &out)
	if err != nil {
		t.Fatalf("NewWriter(%s) = %v", f, err)
	}
	for p := data; len(p) > 0; {
		n := min(len(p), 12345)
		if _, err := zw.Write(p[:n]); err != nil {
			t.Fatalf("%s: Write = %v", f, err)
		}
		p = p[n:]
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("%s: Close = %v", f, err)
	}
	if out.closed {
		t.Errorf("%s: closing the compressor closed the underlying writer", f)
	}
	return out.Bytes()
}

type closeRecorder struct {
	bytes.Buffer
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

// run runs a system tool with stdin and returns its stdout; the test fails
// when the tool is missing (apt-get install zstd xz-utils gzip lz4 bzip2).
func run(t testing.TB, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: %v", name, err)
	}
	cmd := exec.Command(p, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.Bytes())
	}
	return out.Bytes()
}
