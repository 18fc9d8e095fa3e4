package image

import (
	"bytes"
	"context"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// FuzzInspect feeds arbitrary images to Inspect: it must never panic or
// loop, whatever the segment framing says.
func FuzzInspect(f *testing.F) {
	tree := fstree.New()
	tree.Add(fstree.Entry{Path: "dev/console", Kind: fstree.CharDev, Mode: 0o600, Major: 5, Minor: 1})
	tree.Add(fstree.Entry{Path: "init", Kind: fstree.File, Mode: 0o755, Data: []byte("#!/bin/sh\n"), Size: 10})
	tree.Add(fstree.Entry{Path: "bin", Kind: fstree.Symlink, Target: "usr/bin"})
	var plain bytes.Buffer
	if _, err := WriteArchive(context.Background(), &plain, tree, ArchiveOptions{}); err != nil {
		f.Fatal(err)
	}
	for _, c := range compress.Writable() {
		f.Add(append(append([]byte{}, plain.Bytes()...), compressed(f, c, plain.Bytes())...))
	}
	f.Add([]byte("\x00\x00\x00\x00BZh9"))
	f.Add([]byte{0x5d, 0, 0, 0x80, 0})
	f.Fuzz(func(t *testing.T, img []byte) {
		Inspect(bytes.NewReader(img), int64(len(img)))
	})
}
