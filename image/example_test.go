package image_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/pkginitrd/pkginitrd/image"
	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

func Example() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	tree := fstree.New()
	tree.Add(fstree.Entry{Path: "dev/console", Kind: fstree.CharDev, Mode: 0o600, Major: 5, Minor: 1})
	tree.Add(fstree.Entry{Path: "init", Kind: fstree.File, Mode: 0o755, Data: []byte("#!/bin/sh\n"), Size: 10})
	early := fstree.New()
	early.Add(fstree.Entry{Path: image.EarlyCpioMarker, Kind: fstree.File, Mode: 0o644, Data: []byte("1\n"), Size: 2})

	path := filepath.Join(dir, "initrd.img")
	res, err := image.Build(context.Background(), path, tree, image.Options{Compression: compress.Zstd, Early: early})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range res.Segments {
		fmt.Printf("wrote %s segment at %d: %d entries\n", s.Compression, s.Offset, s.Entries)
	}

	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	segs, err := image.Inspect(f, res.Size)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range segs {
		fmt.Printf("%s at %d:", s.Compression, s.Offset)
		for _, h := range s.Entries {
			fmt.Printf(" %s (%v)", h.Name, h.FileMode())
		}
		fmt.Println()
	}
	// Output:
	// wrote none segment at 0: 1 entries
	// wrote zstd segment at 252: 3 entries
	// none at 0: early_cpio (-rw-r--r--)
	// zstd at 252: dev (drwxr-xr-x) dev/console (Dcrw-------) init (-rwxr-xr-x)
}
