// Package luks parses LUKS1 and LUKS2 headers (cryptsetup's
// docs/on-disk-format.pdf and on-disk-format-luks2.pdf): the binary
// header's version, UUID and label, and the ciphers named by the LUKS1
// header or the LUKS2 JSON area. The image generator (modules/hostinfo)
// and the device probe (internal/blkid) both read headers through it.
package luks

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Binary header layout: both versions start with the magic and a
// big-endian u16 version and keep the UUID as text at 168; LUKS1 has
// cipher_name[32] at 8 and cipher_mode[32] at 40; LUKS2 has hdr_size (u64,
// binary header plus JSON area) at 8, label[48] at 24 and its JSON area at
// 4096.
const (
	// Magic starts a primary header; SecondaryMagic starts LUKS2's
	// secondary copy, which follows the primary header's JSON area.
	Magic          = "LUKS\xba\xbe"
	SecondaryMagic = "SKUL\xba\xbe"
	// HeaderMax is how much of a device Read may need: LUKS2's largest
	// header (binary header and JSON area) is 4 MiB.
	HeaderMax = 4 << 20

	jsonOffset = 4096
	fixedLen   = 208 // magic through the UUID: what ParseHeader reads
)

// ErrNotLUKS is returned for data without a LUKS header.
var ErrNotLUKS = errors.New("luks: not a LUKS header")

// Header is what the binary part of a LUKS header says.
type Header struct {
	Version   int
	Secondary bool   // a LUKS2 secondary header ("SKUL" magic)
	UUID      string // as text, "0e5f2a71-…"
	Label     string // LUKS2 only
	// CipherName and CipherMode are LUKS1's ("aes", "xts-plain64");
	// LUKS2 names its ciphers in the JSON area (see Read).
	CipherName, CipherMode string
	Size                   uint64 // LUKS2: hdr_size, binary header plus JSON area
}

// ParseHeader parses the binary header at the start of b, a primary one or
// a LUKS2 secondary one. It returns ErrNotLUKS when b is shorter than the
// fields it reads or has no LUKS magic; it does not check the version of a
// primary header.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < fixedLen {
		return Header{}, ErrNotLUKS
	}
	h := Header{Version: int(binary.BigEndian.Uint16(b[6:8])), UUID: cString(b[168:208])}
	switch string(b[:6]) {
	case Magic:
	case SecondaryMagic:
		if h.Version != 2 { // LUKS1 has no secondary header
			return Header{}, ErrNotLUKS
		}
		h.Secondary = true
	default:
		return Header{}, ErrNotLUKS
	}
	switch h.Version {
	case 1:
		h.CipherName = strings.TrimSpace(cString(b[8:40]))
		h.CipherMode = strings.TrimSpace(cString(b[40:72]))
	case 2:
		h.Label = cString(b[24:72])
		h.Size = binary.BigEndian.Uint64(b[8:16])
	}
	return h, nil
}

// SecondaryOffsets are where a LUKS2 secondary header can start: right
// after the primary header and its JSON area, whose size is one of these.
func SecondaryOffsets() []int {
	return []int{0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000}
}

// Info is what a LUKS header says about a device and the kernel crypto it
// needs.
type Info struct {
	Header
	// Ciphers are the dm-crypt cipher specifications of the data segments
	// ("aes-xts-plain64") and of the keyslot areas, which cryptsetup
	// decrypts through the kernel crypto API: each once, in order.
	Ciphers []string
	// Integrity names the dm-integrity algorithms of LUKS2 segments with
	// authenticated encryption ("hmac(sha256)"), if any.
	Integrity []string
}

// Read reads the primary LUKS1 or LUKS2 header at the start of r (a device
// or an image of one), at most HeaderMax bytes.
func Read(r io.ReaderAt) (Info, error) {
	sr := io.NewSectionReader(r, 0, HeaderMax)
	var bin [jsonOffset]byte
	n, err := io.ReadFull(sr, bin[:])
	h, herr := ParseHeader(bin[:n])
	if herr != nil || h.Secondary {
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return Info{}, fmt.Errorf("luks header: %w", err)
		}
		return Info{}, ErrNotLUKS
	}
	info := Info{Header: h}
	switch h.Version {
	case 1:
		if h.CipherName == "" || h.CipherMode == "" {
			return info, fmt.Errorf("luks1 header: empty cipher %q mode %q", h.CipherName, h.CipherMode)
		}
		info.Ciphers = []string{h.CipherName + "-" + h.CipherMode}
		return info, nil
	case 2:
	default:
		return info, fmt.Errorf("luks header: unknown version %d", h.Version)
	}
	if err != nil {
		return info, fmt.Errorf("luks2 header: %w", err)
	}
	if h.Size <= jsonOffset || h.Size > HeaderMax {
		return info, fmt.Errorf("luks2 header: bad header size %d", h.Size)
	}
	area := make([]byte, h.Size-jsonOffset)
	if _, err := io.ReadFull(sr, area); err != nil {
		return info, fmt.Errorf("luks2 json area: %w", err)
	}
	if i := bytes.IndexByte(area, 0); i >= 0 {
		area = area[:i]
	}
	info.Ciphers, info.Integrity, err = parseJSON(area)
	return info, err
}

// luks2JSON is the part of the LUKS2 JSON metadata that names algorithms.
type luks2JSON struct {
	Segments map[string]struct {
		Type       string `json:"type"`
		Encryption string `json:"encryption"`
		Integrity  *struct {
			Type string `json:"type"`
		} `json:"integrity"`
	} `json:"segments"`
	Keyslots map[string]struct {
		Area struct {
			Type       string `json:"type"`
			Encryption string `json:"encryption"`
		} `json:"area"`
	} `json:"keyslots"`
}

// parseJSON returns the ciphers and integrity algorithms the LUKS2 JSON
// area names: crypt segments first, then keyslot areas, each in key order.
func parseJSON(area []byte) (ciphers, integrity []string, err error) {
	var meta luks2JSON
	if err := json.Unmarshal(area, &meta); err != nil {
		return nil, nil, fmt.Errorf("luks2 json area: %w", err)
	}
	add := func(list []string, s string) []string {
		if s == "" || slices.Contains(list, s) {
			return list
		}
		return append(list, s)
	}
	for _, k := range slices.Sorted(maps.Keys(meta.Segments)) {
		s := meta.Segments[k]
		if s.Type != "crypt" {
			continue
		}
		ciphers = add(ciphers, s.Encryption)
		if s.Integrity != nil {
			integrity = add(integrity, s.Integrity.Type)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(meta.Keyslots)) {
		ciphers = add(ciphers, meta.Keyslots[k].Area.Encryption)
	}
	if len(ciphers) == 0 {
		return nil, nil, fmt.Errorf("luks2 json area: no crypt segment or keyslot names a cipher")
	}
	return ciphers, integrity, nil
}

// cString returns b up to its first NUL with trailing whitespace removed,
// as libblkid reads the UUID and label.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimRight(string(b), " \t\n\r\v\f")
}
