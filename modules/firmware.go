package modules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// FirmwareOrigin is the fstree.Entry origin of the firmware AddFirmware adds.
const FirmwareOrigin = "firmware"

// FirmwareOptions tune Set.AddFirmware.
type FirmwareOptions struct {
	// Dirs are the firmware directories searched in order
	// (/usr/lib/firmware, a kernel package's lib/firmware, …).
	Dirs []string
	// KernelReads are the compressions the kernel's firmware loader reads
	// (CONFIG_FW_LOADER_COMPRESS_XZ, _ZSTD); a file found only compressed
	// otherwise is decompressed into CacheDir.
	KernelReads []compress.Format
	CacheDir    string
	Logger      *slog.Logger // nil discards
}

// AddFirmware adds the firmware files named by the modules of s (their
// firmware= fields) to the image tree under imageDir (e.g.
// "usr/lib/firmware"), at the same relative paths. A file is taken as is,
// else its .xz or .zst variant: kept compressed (with its suffix, which the
// kernel tries) when the kernel reads that compression, else decompressed
// to the plain name. A firmware file found nowhere is a warning naming the
// module and the file, never an error. It returns the image paths added,
// relative to imageDir, sorted as the modules and their firmware are.
func (s *Set) AddFirmware(t *fstree.Tree, imageDir string, opts FirmwareOptions) ([]string, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	done := map[string]bool{}
	var added []string
	for _, m := range s.Modules {
		for _, fw := range m.Firmware {
			if done[fw] {
				continue
			}
			done[fw] = true
			rel, src, size, err := findFirmware(fw, opts)
			if err != nil {
				return nil, fmt.Errorf("firmware %s of module %s: %w", fw, m.Name, err)
			}
			if src == "" {
				log.Warn("firmware file not found, left out", "module", m.Name, "file", fw, "dirs", opts.Dirs)
				continue
			}
			e := fstree.Entry{Path: path.Join(imageDir, rel), Kind: fstree.File, Mode: 0o644, Source: src, Size: size, Origin: FirmwareOrigin}
			if err := t.Add(e); err != nil {
				return nil, fmt.Errorf("add firmware %s of module %s: %w", rel, m.Name, err)
			}
			added = append(added, rel)
		}
	}
	return added, nil
}

// findFirmware returns the path in the image (relative), host source and
// size of firmware file fw, or src "" when no directory has it.
func findFirmware(fw string, opts FirmwareOptions) (rel, src string, size int64, err error) {
	for _, dir := range opts.Dirs {
		p := filepath.Join(dir, filepath.FromSlash(fw))
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return fw, p, st.Size(), nil
		}
		for _, c := range []compress.Format{compress.XZ, compress.Zstd} {
			st, err := os.Stat(p + c.Ext())
			if err != nil || !st.Mode().IsRegular() {
				continue
			}
			for _, r := range opts.KernelReads {
				if r == c {
					return fw + c.Ext(), p + c.Ext(), st.Size(), nil
				}
			}
			dst, n, err := decompressFirmware(p+c.Ext(), st, opts.CacheDir)
			return fw, dst, n, err
		}
	}
	return "", "", 0, nil
}

// decompressFirmware decompresses a firmware file into the cache (named
// after its path, size and mtime) unless already there.
func decompressFirmware(src string, st os.FileInfo, cacheDir string) (string, int64, error) {
	if cacheDir == "" {
		return "", 0, fmt.Errorf("%s is compressed and the kernel cannot read it: decompressing needs FirmwareOptions.CacheDir", src)
	}
	key := sha256.Sum256([]byte(src + "\x00" + strconv.FormatInt(st.Size(), 10) + "\x00" + strconv.FormatInt(st.ModTime().UnixNano(), 10)))
	dst := filepath.Join(cacheDir, "fw", hex.EncodeToString(key[:16]))
	if st, err := os.Stat(dst); err == nil && st.Mode().IsRegular() {
		return dst, st.Size(), nil
	}
	f, err := os.Open(src)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	n, err := decompressTo(f, dst)
	if err != nil {
		return "", 0, fmt.Errorf("decompress %s: %w", src, err)
	}
	return dst, n, nil
}
