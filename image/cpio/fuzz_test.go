package cpio

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the Reader: it must never panic, must
// stop, and anything it accepts must survive a write/read round trip.
func FuzzReader(f *testing.F) {
	f.Add(writeArchive(f, FormatNewc, sampleEntries()))
	f.Add(writeArchive(f, FormatCRC, sampleEntries()))
	f.Add(writeArchive(f, FormatNewc, nil))
	f.Add([]byte("070701"))
	f.Add([]byte("070707000000000000000000000000"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		var entries []entry
		for {
			h, err := r.Next()
			if err != nil {
				var fe *FormatError
				if err != io.EOF && !errors.As(err, &fe) {
					t.Fatalf("Next() = %v, want io.EOF or a *FormatError", err)
				}
				break
			}
			b, err := io.ReadAll(r)
			if err != nil {
				return // corrupt data: reported, fine
			}
			entries = append(entries, entry{h: *h, data: string(b)})
			if r.Offset() > int64(len(data)) {
				t.Fatalf("Offset() = %d beyond the %d input bytes", r.Offset(), len(data))
			}
		}
		// Re-encode what was read, when it is valid for the Writer.
		var buf bytes.Buffer
		w := NewWriter(&buf)
		var kept []entry
		for _, e := range entries {
			e.h.Checksum = 0
			if err := w.WriteHeader(&e.h); err != nil {
				continue
			}
			if _, err := io.WriteString(w, e.data); err != nil {
				t.Fatalf("Write(%q) = %v", e.h.Name, err)
			}
			kept = append(kept, e)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
		again := readArchive(t, buf.Bytes())
		if len(again) != len(kept) {
			t.Fatalf("round trip read %d entries, wrote %d", len(again), len(kept))
		}
		for i := range kept {
			if again[i] != kept[i] {
				t.Fatalf("round trip entry %d = %+v, want %+v", i, again[i], kept[i])
			}
		}
	})
}
