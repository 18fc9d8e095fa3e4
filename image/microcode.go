package image

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// Paths of the early segment read by the kernel's early microcode loader
// (K: Documentation/arch/x86/microcode.rst) and the marker dracut and
// mkinitcpio write (`echo 1 > early_cpio`) for tools that look for the main
// archive behind the early one.
const (
	IntelMicrocodePath = "kernel/x86/microcode/GenuineIntel.bin"
	AMDMicrocodePath   = "kernel/x86/microcode/AuthenticAMD.bin"
	EarlyCpioMarker    = "early_cpio"
)

// MicrocodeTree builds the early segment's tree from the microcode under
// fwRoot: usr/lib/firmware/intel-ucode/* concatenated in name order into
// GenuineIntel.bin, usr/lib/firmware/amd-ucode/microcode_amd*.bin into
// AuthenticAMD.bin (lib/firmware is used when usr/lib/firmware has no such
// directory), plus the early_cpio marker. Files compressed as .xz or .zst
// (as linux-firmware ships them on some distributions) are decompressed; a
// compressed file is ignored when its plain version is present, and .asc
// signatures are ignored. It returns nil, nil when there is no microcode.
//
// The concatenated blobs are held in memory (tens of MiB at most for all
// Intel models): an fstree.Entry has a single source.
func MicrocodeTree(fwRoot string) (*fstree.Tree, error) {
	t := fstree.New()
	found := false
	for _, v := range []struct {
		dir, dest string
		match     func(string) bool
	}{
		{"intel-ucode", IntelMicrocodePath, func(string) bool { return true }},
		{"amd-ucode", AMDMicrocodePath, func(name string) bool {
			return strings.HasPrefix(name, "microcode_amd") && strings.HasSuffix(name, ".bin")
		}},
	} {
		dir := firmwareDir(fwRoot, v.dir)
		if dir == "" {
			continue
		}
		blob, err := concatMicrocode(dir, v.match)
		if err != nil {
			return nil, err
		}
		if len(blob) == 0 {
			continue
		}
		found = true
		if err := t.Add(fstree.Entry{Path: v.dest, Kind: fstree.File, Mode: 0o644, Data: blob, Size: int64(len(blob)), Origin: "microcode"}); err != nil {
			return nil, err
		}
	}
	if !found {
		return nil, nil
	}
	marker := []byte("1\n")
	if err := t.Add(fstree.Entry{Path: EarlyCpioMarker, Kind: fstree.File, Mode: 0o644, Data: marker, Size: int64(len(marker)), Origin: "microcode"}); err != nil {
		return nil, err
	}
	return t, nil
}

// firmwareDir returns the vendor directory under fwRoot, or "".
func firmwareDir(fwRoot, vendor string) string {
	for _, d := range []string{"usr/lib/firmware", "lib/firmware"} {
		p := filepath.Join(fwRoot, d, vendor)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
	}
	return ""
}

// concatMicrocode returns the decompressed contents of the microcode files
// in dir whose name (less a .xz or .zst suffix) match accepts, in name order.
func concatMicrocode(dir string, match func(string) bool) ([]byte, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("microcode: %w", err)
	}
	present := map[string]bool{}
	for _, e := range ents {
		present[e.Name()] = true
	}
	var names []string
	for _, e := range ents {
		name := e.Name()
		base, comp := strings.CutSuffix(name, compress.XZ.Ext())
		if !comp {
			base, comp = strings.CutSuffix(name, compress.Zstd.Ext())
		}
		switch {
		case strings.HasPrefix(name, "."), strings.HasSuffix(name, ".asc"), !match(base):
			continue
		case comp && present[base]:
			continue // the plain file is used
		}
		names = append(names, name)
	}
	sort.Strings(names)
	var blob bytes.Buffer
	for _, name := range names {
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("microcode: %w", err)
		}
		if !st.Mode().IsRegular() {
			continue
		}
		if err := appendMicrocode(&blob, p); err != nil {
			return nil, fmt.Errorf("microcode %s: %w", p, err)
		}
	}
	return blob.Bytes(), nil
}

func appendMicrocode(dst *bytes.Buffer, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	format := compress.None
	if ext := filepath.Ext(p); ext == compress.XZ.Ext() || ext == compress.Zstd.Ext() {
		format, _ = compress.ByExt(ext)
	}
	zr, err := compress.NewReader(format, f)
	if err != nil {
		return err
	}
	defer zr.Close()
	_, err = dst.ReadFrom(zr)
	return err
}
