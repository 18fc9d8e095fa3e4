package kmod

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/compress"
)

// ModInfo is the metadata of one module that matters for picking and
// loading it, from its .modinfo section (or modules.builtin.modinfo).
type ModInfo struct {
	Name     string   // name= (normalized); empty if the section has none
	Depends  []string // depends=: hard dependencies (normalized module names)
	Aliases  []string // alias=: fnmatch patterns, as written
	Firmware []string // firmware=: paths relative to /lib/firmware
	SoftPre  []string // softdep= "pre:" names (module names or aliases, as written)
	SoftPost []string // softdep= "post:" names
	Weak     []string // weakdep=: names the module may request_module() at run time
	Vermagic string   // vermagic=
}

// Field is one key=value string of a .modinfo section, or one record
// "module.key=value" of modules.builtin.modinfo (then Module is set).
type Field struct {
	Module, Key, Value string
}

// ParseFields splits a .modinfo section into its key=value strings. The
// section is NUL-separated and may be padded with NULs; strings without '='
// are skipped.
func ParseFields(section []byte) []Field {
	var out []Field
	for _, s := range bytes.Split(section, []byte{0}) {
		k, v, ok := bytes.Cut(s, []byte{'='})
		if !ok || len(k) == 0 {
			continue
		}
		out = append(out, Field{Key: string(k), Value: string(v)})
	}
	return out
}

// ParseModInfo extracts the fields of ModInfo from a .modinfo section.
func ParseModInfo(section []byte) ModInfo {
	return infoFromFields(ParseFields(section))
}

func infoFromFields(fields []Field) ModInfo {
	var mi ModInfo
	for _, f := range fields {
		mi.add(f.Key, f.Value)
	}
	return mi
}

func (mi *ModInfo) add(key, value string) {
	switch key {
	case "name":
		mi.Name = Normalize(value)
	case "depends":
		for _, d := range strings.Split(value, ",") {
			if d = strings.TrimSpace(d); d != "" {
				mi.Depends = append(mi.Depends, Normalize(d))
			}
		}
	case "alias":
		if value != "" {
			mi.Aliases = append(mi.Aliases, value)
		}
	case "firmware":
		if value != "" {
			mi.Firmware = append(mi.Firmware, value)
		}
	case "softdep":
		pre, post := ParseSoftDepValue(value)
		mi.SoftPre = append(mi.SoftPre, pre...)
		mi.SoftPost = append(mi.SoftPost, post...)
	case "weakdep":
		mi.Weak = append(mi.Weak, strings.Fields(value)...)
	case "vermagic":
		mi.Vermagic = value
	}
}

// ParseSoftDepValue splits a softdep value "pre: a b post: c" into its pre
// and post names. As in kmod, names before the first "pre:" or "post:" are
// ignored.
func ParseSoftDepValue(v string) (pre, post []string) {
	var cur *[]string
	for _, tok := range strings.Fields(v) {
		switch tok {
		case "pre:":
			cur = &pre
		case "post:":
			cur = &post
		default:
			if cur != nil {
				*cur = append(*cur, tok)
			}
		}
	}
	return pre, post
}

// FormatSoftDepValue is the inverse of ParseSoftDepValue.
func FormatSoftDepValue(pre, post []string) string {
	var parts []string
	if len(pre) > 0 {
		parts = append(parts, "pre:")
		parts = append(parts, pre...)
	}
	if len(post) > 0 {
		parts = append(parts, "post:")
		parts = append(parts, post...)
	}
	return strings.Join(parts, " ")
}

// ModInfoSection returns the contents of the .modinfo section of the ELF
// object r (an uncompressed module).
func ModInfoSection(r io.ReaderAt) ([]byte, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, err
	}
	s := f.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("no .modinfo section")
	}
	return s.Data()
}

// ReadModInfo reads the metadata of the module file at path (.ko, .ko.xz,
// .ko.zst or .ko.gz; the compression is detected by magic). If the section
// has no name= the name is derived from the file name.
func ReadModInfo(path string) (ModInfo, error) {
	sec, err := readSection(path)
	if err != nil {
		return ModInfo{}, fmt.Errorf("read modinfo of %s: %w", path, err)
	}
	mi := ParseModInfo(sec)
	if mi.Name == "" {
		mi.Name = NameFromPath(path)
	}
	return mi, nil
}

func readSection(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var head [compress.MagicSize]byte
	n, err := io.ReadFull(f, head[:])
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, err
	}
	c := compress.Detect(head[:n])
	if c == compress.None {
		// Plain ELF: read only the headers and the section.
		return ModInfoSection(f)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	zr, err := compress.NewReader(c, f)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	// The section headers sit at the end of the ELF file, so a compressed
	// module has to be decompressed whole.
	var buf bytes.Buffer
	if st, err := f.Stat(); err == nil {
		buf.Grow(int(st.Size()) * 4)
	}
	if _, err := buf.ReadFrom(zr); err != nil {
		return nil, err
	}
	return ModInfoSection(bytes.NewReader(buf.Bytes()))
}
