package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"

	"github.com/pkginitrd/pkginitrd/image/cpio"
	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// TestReadFilesMatchesWriterSums writes a tree with every kind of entry
// behind an early segment that a later file overrides, and checks that
// ReadFiles sees what the kernel unpacks, with the hashes the writer
// computed while writing (hard links included).
func TestReadFilesMatchesWriterSums(t *testing.T) {
	src := hostFiles(t)
	main := sampleTree(t, src)
	early := fstree.New()
	for _, e := range []fstree.Entry{
		{Path: "usr/share/text", Kind: fstree.File, Mode: 0o600, Data: []byte("overridden\n"), Size: 11},
		{Path: "kernel/x86/microcode/GenuineIntel.bin", Kind: fstree.File, Mode: 0o644, Data: []byte("ucode"), Size: 5},
	} {
		if err := early.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	res, err := Write(context.Background(), &b, main, Options{Compression: compress.Gzip, Early: early, Sums: true})
	if err != nil {
		t.Fatal(err)
	}
	files, err := ReadFiles(context.Background(), bytes.NewReader(b.Bytes()), int64(b.Len()), "etc/inline", "usr/lib/0")
	if err != nil {
		t.Fatalf("ReadFiles = %v", err)
	}
	got := map[string]File{}
	for _, f := range files {
		got[f.Path] = f
	}
	sums := res.Segments[1].Sums
	for _, e := range main.Sorted() {
		f, ok := got[e.Path]
		if !ok {
			t.Errorf("ReadFiles lacks %s", e.Path)
			continue
		}
		if e.Kind == fstree.File || e.Kind == fstree.Hardlink {
			if f.Mode&cpio.TypeMask != cpio.TypeReg || f.SHA256 != sums[e.Path].SHA256 || f.SHA256 == "" {
				t.Errorf("%s: ReadFiles %o %s, writer %s", e.Path, f.Mode, f.SHA256, sums[e.Path].SHA256)
			}
		}
	}
	busybox, _ := os.ReadFile(src + "/busybox")
	if h := sha256.Sum256(busybox); got["usr/bin/busybox"].SHA256 != hex.EncodeToString(h[:]) || got["usr/bin/busybox"].Mode&0o4000 == 0 {
		t.Errorf("usr/bin/busybox = %+v, want the source's hash and setuid", got["usr/bin/busybox"])
	}
	if string(got["etc/inline"].Data) != "inline data\n" || string(got["usr/lib/0"].Data) != "one inode, three names\n" || got["usr/bin/busybox"].Data != nil {
		t.Errorf("kept data: etc/inline %q, usr/lib/0 %q, busybox %d bytes; want the two asked for only", got["etc/inline"].Data, got["usr/lib/0"].Data, len(got["usr/bin/busybox"].Data))
	}
	if got["usr/bin/sh"].Linkname != "busybox" || got["dev/console"].RdevMajor != 5 {
		t.Errorf("usr/bin/sh -> %q, dev/console major %d", got["usr/bin/sh"].Linkname, got["dev/console"].RdevMajor)
	}
	// The main segment's text replaced the early one's; the microcode stays.
	if got["usr/share/text"].Size != 220000 || res.Segments[0].Sums["kernel/x86/microcode/GenuineIntel.bin"].SHA1 == "" {
		t.Errorf("usr/share/text = %d bytes, early sums %v", got["usr/share/text"].Size, res.Segments[0].Sums)
	}
	union := map[string]bool{}
	for _, e := range append(main.Sorted(), early.Sorted()...) {
		union[e.Path] = true
	}
	if len(files) != len(union) {
		t.Errorf("ReadFiles = %d files, want the %d paths of both segments", len(files), len(union))
	}
}

func TestReadFilesNoArchive(t *testing.T) {
	if _, err := ReadFiles(context.Background(), bytes.NewReader(make([]byte, 512)), 512); err != ErrNoArchive {
		t.Errorf("ReadFiles(zeros) = %v, want ErrNoArchive", err)
	}
}
