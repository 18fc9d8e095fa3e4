package image

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// benchTree generates a tree like an initramfs: 3000 files totalling about
// 40 MiB (mostly small, some large; text, binary-like and random content)
// on disk, plus directories and symlinks.
func benchTree(b *testing.B) (*fstree.Tree, int64) {
	b.Helper()
	src := b.TempDir()
	rng := rand.New(rand.NewPCG(11, 12))
	tree := fstree.New()
	var total int64
	for i := range 3000 {
		size := rng.IntN(8 << 10)
		if i%100 == 0 {
			size = 1<<20 + rng.IntN(1<<20)
		}
		name := filepath.Join(src, fmt.Sprint(i))
		if err := os.WriteFile(name, seededData(size, uint64(i)), 0o644); err != nil {
			b.Fatal(err)
		}
		p := fmt.Sprintf("usr/lib/pkg%02d/sub%d/file%04d", i%40, i%7, i)
		if err := tree.Add(fstree.Entry{Path: p, Kind: fstree.File, Mode: 0o644, Source: name, Size: int64(size)}); err != nil {
			b.Fatal(err)
		}
		if i%10 == 0 {
			tree.Add(fstree.Entry{Path: p + ".link", Kind: fstree.Symlink, Target: fmt.Sprintf("file%04d", i)})
		}
		total += int64(size)
	}
	return tree, total
}

func BenchmarkWriteArchive(b *testing.B) {
	tree, total := benchTree(b)
	b.SetBytes(total)
	b.ResetTimer()
	for b.Loop() {
		if _, err := WriteArchive(context.Background(), io.Discard, tree, ArchiveOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuild(b *testing.B) {
	tree, total := benchTree(b)
	out := filepath.Join(b.TempDir(), "initrd.img")
	for _, c := range compress.Writable() {
		b.Run(string(c), func(b *testing.B) {
			b.SetBytes(total)
			var size int64
			for b.Loop() {
				res, err := Build(context.Background(), out, tree, Options{Compression: c})
				if err != nil {
					b.Fatal(err)
				}
				size = res.Size
			}
			b.ReportMetric(float64(size)/float64(total), "ratio")
		})
	}
}

func BenchmarkInspect(b *testing.B) {
	tree, total := benchTree(b)
	out := filepath.Join(b.TempDir(), "initrd.img")
	if _, err := Build(context.Background(), out, tree, Options{}); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	b.SetBytes(total)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Inspect(f, st.Size()); err != nil {
			b.Fatal(err)
		}
	}
}
