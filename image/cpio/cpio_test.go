package cpio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// entry is a header plus the data written for it.
type entry struct {
	h    Header
	data string
}

func sampleEntries() []entry {
	return []entry{
		{h: Header{Name: "dev", Mode: TypeDir | 0o755, Nlink: 2, Ino: 1, Mtime: 1700000000}},
		{h: Header{Name: "dev/console", Mode: TypeChar | 0o600, Nlink: 1, Ino: 2, RdevMajor: 5, RdevMinor: 1}},
		{h: Header{Name: "dev/sda", Mode: TypeBlock | 0o660, Nlink: 1, Ino: 3, RdevMajor: 8, RdevMinor: 0, Gid: 6}},
		{h: Header{Name: "init", Mode: TypeReg | 0o755, Nlink: 1, Ino: 4, Size: 11}, data: "#!/bin/sh\n\n"},
		{h: Header{Name: "empty", Mode: TypeReg | 0o644, Nlink: 1, Ino: 5}},
		{h: Header{Name: "bin", Mode: TypeSymlink | 0o777, Nlink: 1, Ino: 6, Linkname: "usr/bin"}},
		{h: Header{Name: "fifo", Mode: TypeFifo | 0o600, Nlink: 1, Ino: 7}},
		{h: Header{Name: "sock", Mode: TypeSocket | 0o755, Nlink: 1, Ino: 8}},
		{h: Header{Name: "suid", Mode: TypeReg | ModeSetuid | ModeSticky | 0o755, Nlink: 1, Ino: 9, Size: 1, Uid: 1000, Gid: 1000}, data: "x"},
		{h: Header{Name: "link1", Mode: TypeReg | 0o644, Nlink: 2, Ino: 10, DevMajor: 259, DevMinor: 3}},
		{h: Header{Name: "link2", Mode: TypeReg | 0o644, Nlink: 2, Ino: 10, DevMajor: 259, DevMinor: 3, Size: 5}, data: "hello"},
		{h: Header{Name: strings.Repeat("long/", 60) + "name", Mode: TypeReg | 0o600, Nlink: 1, Ino: 11, Size: 2, Mtime: 1<<32 - 1}, data: "ab"},
	}
}

func writeArchive(t testing.TB, f Format, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriterFormat(&buf, f)
	for _, e := range entries {
		h := e.h
		if f == FormatCRC && h.Type() == TypeReg {
			h.Checksum = byteSum([]byte(e.data))
		}
		if err := w.WriteHeader(&h); err != nil {
			t.Fatalf("WriteHeader(%q) = %v", h.Name, err)
		}
		if _, err := io.WriteString(w, e.data); err != nil {
			t.Fatalf("Write(%q) = %v", h.Name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if int64(buf.Len()) != w.Offset() {
		t.Fatalf("Offset() = %d, want %d (bytes written)", w.Offset(), buf.Len())
	}
	return buf.Bytes()
}

func byteSum(b []byte) uint32 {
	var s uint32
	for _, c := range b {
		s += uint32(c)
	}
	return s
}

func readArchive(t testing.TB, b []byte) []entry {
	t.Helper()
	r := NewReader(bytes.NewReader(b))
	var out []entry
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next() after %d entries = %v", len(out), err)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("Read(%q) = %v", h.Name, err)
		}
		out = append(out, entry{h: *h, data: string(data)})
	}
	if r.Offset() != int64(len(b)) {
		t.Errorf("Offset() at EOF = %d, want %d", r.Offset(), len(b))
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for _, f := range []Format{FormatNewc, FormatCRC} {
		t.Run(f.String(), func(t *testing.T) {
			in := sampleEntries()
			b := writeArchive(t, f, in)
			if len(b)%4 != 0 {
				t.Errorf("archive length %d is not a multiple of 4", len(b))
			}
			out := readArchive(t, b)
			if len(out) != len(in) {
				t.Fatalf("read %d entries, want %d", len(out), len(in))
			}
			for i := range in {
				want := in[i]
				if f == FormatCRC && want.h.Type() == TypeReg {
					want.h.Checksum = byteSum([]byte(want.data))
				}
				if out[i] != want {
					t.Errorf("entry %d = %+v, want %+v", i, out[i], want)
				}
			}
		})
	}
}

func TestReproducible(t *testing.T) {
	a := writeArchive(t, FormatNewc, sampleEntries())
	b := writeArchive(t, FormatNewc, sampleEntries())
	if !bytes.Equal(a, b) {
		t.Fatal("two archives of the same entries differ")
	}
}

// TestLayout checks the bytes of a small archive against the kernel's
// grammar: 110-byte header, name+NUL padded so that header+name is a
// multiple of 4, data padded to 4.
func TestLayout(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.WriteHeader(&Header{Name: "ab", Mode: TypeReg | 0o644, Nlink: 1, Ino: 0x1f, Size: 3, Mtime: 0x5f5e100}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("xyz")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "070701" + "0000001f" + "000081a4" + "00000000" + "00000000" + "00000001" + "05f5e100" + "00000003" +
		"00000000" + "00000000" + "00000000" + "00000000" + "00000003" + "00000000" + "ab\x00" + "\x00\x00\x00" + // 110+3 → 116
		"xyz\x00" +
		"070701" + "00000000" + "00000000" + "00000000" + "00000000" + "00000001" + "00000000" + "00000000" +
		"00000000" + "00000000" + "00000000" + "00000000" + "0000000b" + "00000000" + "TRAILER!!!\x00" + "\x00\x00\x00" // 110+11 → 124
	if got := buf.String(); got != want {
		t.Errorf("archive =\n%q\nwant\n%q", got, want)
	}
}

// TestNameAlign checks that our padding after header+name matches the
// kernel's N_ALIGN(len) = ((len+1) & ~3) + 2 (init/initramfs.c), which
// assumes the 110-byte header starts 4-aligned.
func TestNameAlign(t *testing.T) {
	for nameSize := int64(1); nameSize < 40; nameSize++ {
		kernel := ((nameSize + 1) &^ 3) + 2
		ours := nameSize + align4(headerSize+nameSize)
		if ours != kernel {
			t.Errorf("padded name size for c_namesize=%d = %d, kernel N_ALIGN = %d", nameSize, ours, kernel)
		}
	}
}

func TestWriteHeaderRejects(t *testing.T) {
	tests := []struct {
		h    Header
		want error
	}{
		{Header{Name: "", Mode: TypeReg}, ErrHeader},
		{Header{Name: "a\x00b", Mode: TypeReg}, ErrHeader},
		{Header{Name: Trailer, Mode: TypeReg}, ErrHeader},
		{Header{Name: "a", Mode: 0o644}, ErrHeader},            // no type
		{Header{Name: "a", Mode: 0o170000 | 0o644}, ErrHeader}, // unknown type
		{Header{Name: "a", Mode: TypeReg | 0o1000000}, ErrHeader},
		{Header{Name: "a", Mode: TypeDir, Size: 1}, ErrHeader},
		{Header{Name: "a", Mode: TypeChar, Size: 1}, ErrHeader},
		{Header{Name: "a", Mode: TypeSymlink}, ErrHeader},
		{Header{Name: "a", Mode: TypeSymlink, Linkname: "b", Size: 2}, ErrHeader},
		{Header{Name: "a", Mode: TypeReg, Linkname: "b"}, ErrHeader},
		{Header{Name: "a", Mode: TypeDir, Linkname: "b"}, ErrHeader},
		{Header{Name: "a", Mode: TypeReg, Checksum: 1}, ErrHeader}, // newc has no checksum
		{Header{Name: "a", Mode: TypeReg, Size: 1 << 32}, ErrFieldTooLong},
		{Header{Name: "a", Mode: TypeReg, Size: -1}, ErrFieldTooLong},
		{Header{Name: "a", Mode: TypeReg, Mtime: 1 << 32}, ErrFieldTooLong},
		{Header{Name: "a", Mode: TypeReg, Mtime: -1}, ErrFieldTooLong},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		err := w.WriteHeader(&tt.h)
		if !errors.Is(err, tt.want) {
			t.Errorf("WriteHeader(%+v) = %v, want %v", tt.h, err, tt.want)
		}
		if buf.Len() != 0 {
			t.Errorf("WriteHeader(%+v) wrote %d bytes for a rejected header", tt.h, buf.Len())
		}
		// A rejected header does not break the writer.
		if err := w.WriteHeader(&Header{Name: "ok", Mode: TypeDir | 0o755}); err != nil {
			t.Errorf("WriteHeader after rejected %+v = %v", tt.h, err)
		}
	}
}

func TestWriteTooLong(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.WriteHeader(&Header{Name: "f", Mode: TypeReg | 0o644, Size: 3}); err != nil {
		t.Fatal(err)
	}
	n, err := w.Write([]byte("abcd"))
	if n != 3 || !errors.Is(err, ErrWriteTooLong) {
		t.Errorf("Write(4 bytes into 3) = %d, %v; want 3, ErrWriteTooLong", n, err)
	}
	if err := w.WriteHeader(&Header{Name: "d", Mode: TypeDir | 0o755}); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Write([]byte("x")); n != 0 || !errors.Is(err, ErrWriteTooLong) {
		t.Errorf("Write to a directory = %d, %v; want 0, ErrWriteTooLong", n, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out := readArchive(t, buf.Bytes())
	if len(out) != 2 || out[0].data != "abc" {
		t.Errorf("read back %+v, want f=abc and d", out)
	}
}

func TestMissedBytesIsSticky(t *testing.T) {
	w := NewWriter(io.Discard)
	if err := w.WriteHeader(&Header{Name: "f", Mode: TypeReg | 0o644, Size: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("ab")); err != nil {
		t.Fatal(err)
	}
	err1 := w.WriteHeader(&Header{Name: "g", Mode: TypeDir})
	if err1 == nil || !strings.Contains(err1.Error(), "missed writing 1 bytes") {
		t.Fatalf("WriteHeader after short data = %v, want missed writing 1 bytes", err1)
	}
	if err := w.Close(); err != err1 {
		t.Errorf("Close() = %v, want sticky %v", err, err1)
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n < len(p) {
		n := f.n
		f.n = 0
		return n, errors.New("disk full")
	}
	f.n -= len(p)
	return len(p), nil
}

func TestWriteErrorIsSticky(t *testing.T) {
	w := NewWriter(&failWriter{n: 120})
	if err := w.WriteHeader(&Header{Name: "f", Mode: TypeReg | 0o644, Size: 100}); err != nil {
		t.Fatal(err)
	}
	_, err := w.Write(make([]byte, 100))
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Write past the failure = %v, want disk full", err)
	}
	for name, f := range map[string]func() error{
		"WriteHeader": func() error { return w.WriteHeader(&Header{Name: "g", Mode: TypeDir}) },
		"Write":       func() error { _, err := w.Write(nil); return err },
		"Close":       w.Close,
	} {
		if got := f(); got != err {
			t.Errorf("%s after a write error = %v, want %v", name, got, err)
		}
	}
}

type closeRecorder struct {
	bytes.Buffer
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestWriteAfterClose(t *testing.T) {
	var out closeRecorder
	w := NewWriter(&out)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out.closed {
		t.Error("Close closed the underlying writer")
	}
	if err := w.WriteHeader(&Header{Name: "a", Mode: TypeDir}); err != ErrWriteAfterClose {
		t.Errorf("WriteHeader after Close = %v, want ErrWriteAfterClose", err)
	}
	if _, err := w.Write([]byte("x")); err != ErrWriteAfterClose {
		t.Errorf("Write after Close = %v, want ErrWriteAfterClose", err)
	}
	if err := w.Close(); err != ErrWriteAfterClose {
		t.Errorf("second Close = %v, want ErrWriteAfterClose", err)
	}
	// An empty archive is only the trailer.
	if out.Len() != 124 {
		t.Errorf("empty archive is %d bytes, want 124", out.Len())
	}
	if got := readArchive(t, out.Bytes()); len(got) != 0 {
		t.Errorf("empty archive has entries %+v", got)
	}
}

func TestCRCWriterChecksSum(t *testing.T) {
	w := NewWriterFormat(io.Discard, FormatCRC)
	if err := w.WriteHeader(&Header{Name: "f", Mode: TypeReg | 0o644, Size: 2, Checksum: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("ab")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, ErrChecksum) {
		t.Errorf("Close after data not matching Checksum = %v, want ErrChecksum", err)
	}
}

// TestReaderOffset reads two archives and junk back to back: each Reader
// must stop exactly after its trailer's padding.
func TestReaderOffset(t *testing.T) {
	a := writeArchive(t, FormatNewc, sampleEntries()[:4])
	b := writeArchive(t, FormatCRC, sampleEntries()[3:])
	stream := append(append(append([]byte{}, a...), b...), "junk"...)
	src := bytes.NewReader(stream)
	for i, want := range []int{len(a), len(b)} {
		r := NewReader(src)
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("archive %d: Next() = %v", i, err)
			}
		}
		if r.Offset() != int64(want) {
			t.Errorf("archive %d: Offset() = %d, want %d", i, r.Offset(), want)
		}
		if _, err := r.Next(); err != io.EOF {
			t.Errorf("archive %d: Next() after EOF = %v, want io.EOF", i, err)
		}
	}
	if rest, _ := io.ReadAll(src); string(rest) != "junk" {
		t.Errorf("after two archives the stream holds %q, want %q", rest, "junk")
	}
}

func TestReaderNoTrailer(t *testing.T) {
	a := writeArchive(t, FormatNewc, sampleEntries()[:3])
	a = a[:len(a)-124] // drop the trailer
	if got := readArchive(t, a); len(got) != 3 {
		t.Errorf("archive without trailer: read %d entries, want 3", len(got))
	}
}

func TestReaderCorrupt(t *testing.T) {
	good := writeArchive(t, FormatCRC, sampleEntries()[3:5]) // init (11 bytes), empty
	// init: header at 0, name "init\0" → 116, data 116..127, pad 1 → 128.
	mod := func(off int, s string) []byte {
		b := append([]byte{}, good...)
		copy(b[off:], s)
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		want    error
		wantOff int64
		msg     string
	}{
		{"odc magic", mod(0, "070707"), ErrHeader, 0, "odc"},
		{"bad magic", mod(0, "123456"), ErrHeader, 0, "no cpio magic"},
		{"bad hex", mod(6, "0000000g"), ErrHeader, 0, "c_ino"},
		{"namesize 0", mod(6+11*8, "00000000"), ErrHeader, 0, "name size is 0"},
		{"namesize huge", mod(6+11*8, "ffffffff"), ErrHeader, 0, "exceeds"},
		{"name not terminated", mod(110+4, "x"), ErrHeader, 0, "NUL-terminated"},
		{"checksum", mod(120, "X"), ErrChecksum, 116, "header says"},
		{"truncated header", good[:50], io.ErrUnexpectedEOF, 0, "reading header"},
		{"truncated name", good[:112], io.ErrUnexpectedEOF, 0, "reading name"},
		{"truncated data", good[:120], io.ErrUnexpectedEOF, 120, "reading data"},
		{"second header", mod(128, "0707x1"), ErrHeader, 128, "no cpio magic"},
	}
	for _, tt := range tests {
		r := NewReader(bytes.NewReader(tt.in))
		var err error
		for err == nil {
			if _, err = r.Next(); err == nil {
				_, err = io.Copy(io.Discard, r)
			}
		}
		var fe *FormatError
		if !errors.Is(err, tt.want) || !errors.As(err, &fe) || fe.Offset != tt.wantOff || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: error = %v, want %v at offset %d mentioning %q", tt.name, err, tt.want, tt.wantOff, tt.msg)
			continue
		}
		if _, again := r.Next(); again != err {
			t.Errorf("%s: Next() after error = %v, want the same error", tt.name, again)
		}
	}
}

// TestReaderDataAlignedNames reads names padded with extra NULs, as
// dracut-cpio --data-align writes them.
func TestReaderDataAlignedNames(t *testing.T) {
	name := "usr/lib/x\x00\x00\x00\x00\x00\x00\x00"
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", 1, TypeReg|0o644, 0, 0, 1, 0, 4, 0, 0, 0, 0, len(name), 0)
	arch := hdr + name + strings.Repeat("\x00", int(align4(int64(len(hdr)+len(name))))) + "data"
	got := readArchive(t, []byte(arch))
	if len(got) != 1 || got[0].h.Name != "usr/lib/x" || got[0].data != "data" {
		t.Errorf("read %+v, want usr/lib/x with data", got)
	}
}
