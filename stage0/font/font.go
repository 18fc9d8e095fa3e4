// Package font reads a PC Screen Font (PSF version 1 or 2, as kbd's
// setfont and console-setup use) and loads it into the kernel's virtual
// terminal, with the font's Unicode table, so that the console shows the
// user's characters from the first passphrase prompt on.
package font

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// The two PSF headers (kbd's psf.h).
const (
	psf1Magic     = "\x36\x04"
	psf1Mode512   = 0x01
	psf1ModeTab   = 0x02
	psf1ModeSeq   = 0x04
	psf1Separator = 0xFFFF
	psf1StartSeq  = 0xFFFE

	psf2Magic     = "\x72\xb5\x4a\x86"
	psf2HeaderLen = 32
	psf2HasTable  = 0x01
	psf2Separator = 0xFF
	psf2StartSeq  = 0xFE
)

// The kernel's limits for KD_FONT_OP_SET (drivers/tty/vt/vt.c): each
// glyph is passed padded to MaxHeight rows.
const (
	MaxWidth  = 32
	MaxHeight = 32
	MaxGlyphs = 512
)

// ErrFormat is returned for data that is not a PSF font.
var ErrFormat = errors.New("font: not a PC Screen Font (PSF1 or PSF2)")

// Font is a parsed console font.
type Font struct {
	Width, Height int
	// Glyphs holds Count glyphs of Height rows of (Width+7)/8 bytes each.
	Glyphs []byte
	Count  int
	// Unicode lists the code points each glyph shows (single characters
	// only: the kernel takes no sequences); nil when the font has no table.
	Unicode [][]rune
}

// Parse reads an uncompressed PSF1 or PSF2 font.
func Parse(data []byte) (*Font, error) {
	switch {
	case bytes.HasPrefix(data, []byte(psf2Magic)):
		return parsePSF2(data)
	case bytes.HasPrefix(data, []byte(psf1Magic)):
		return parsePSF1(data)
	}
	return nil, ErrFormat
}

func parsePSF1(data []byte) (*Font, error) {
	if len(data) < 4 {
		return nil, ErrFormat
	}
	mode, height := data[2], int(data[3])
	f := &Font{Width: 8, Height: height, Count: 256}
	if mode&psf1Mode512 != 0 {
		f.Count = 512
	}
	rest, err := f.takeGlyphs(data[4:])
	if err != nil || mode&(psf1ModeTab|psf1ModeSeq) == 0 {
		return f, err
	}
	f.Unicode = make([][]rune, f.Count)
	for g := range f.Unicode {
		inSeq := false
		for {
			if len(rest) < 2 {
				return nil, fmt.Errorf("%w: Unicode table cut short at glyph %d", ErrFormat, g)
			}
			v := binary.LittleEndian.Uint16(rest)
			rest = rest[2:]
			if v == psf1Separator {
				break
			}
			if v == psf1StartSeq {
				inSeq = true
			} else if !inSeq {
				f.Unicode[g] = append(f.Unicode[g], rune(v))
			}
		}
	}
	return f, nil
}

func parsePSF2(data []byte) (*Font, error) {
	if len(data) < psf2HeaderLen {
		return nil, ErrFormat
	}
	var h struct {
		Magic, Version, HeaderSize, Flags, Length, CharSize, Height, Width uint32
	}
	if err := binary.Read(bytes.NewReader(data), binary.LittleEndian, &h); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if h.HeaderSize < psf2HeaderLen || int64(h.HeaderSize) > int64(len(data)) {
		return nil, fmt.Errorf("%w: header size %d", ErrFormat, h.HeaderSize)
	}
	if h.Width == 0 || h.Width > MaxWidth || h.Height == 0 || h.Height > MaxHeight || h.Length == 0 || h.Length > MaxGlyphs {
		return nil, fmt.Errorf("font: %d glyphs of %dx%d pixels; the console takes at most %d glyphs of %dx%d", h.Length, h.Width, h.Height, MaxGlyphs, MaxWidth, MaxHeight)
	}
	f := &Font{Width: int(h.Width), Height: int(h.Height), Count: int(h.Length)}
	if int(h.CharSize) != f.Height*f.rowBytes() {
		return nil, fmt.Errorf("%w: %d bytes per glyph for %dx%d pixels", ErrFormat, h.CharSize, f.Width, f.Height)
	}
	rest, err := f.takeGlyphs(data[h.HeaderSize:])
	if err != nil || h.Flags&psf2HasTable == 0 {
		return f, err
	}
	f.Unicode = make([][]rune, f.Count)
	for g := range f.Unicode {
		end := bytes.IndexByte(rest, psf2Separator)
		if end < 0 {
			return nil, fmt.Errorf("%w: Unicode table cut short at glyph %d", ErrFormat, g)
		}
		chars := rest[:end]
		if seq := bytes.IndexByte(chars, psf2StartSeq); seq >= 0 {
			chars = chars[:seq]
		}
		for len(chars) > 0 {
			r, n := utf8.DecodeRune(chars)
			if r == utf8.RuneError && n < 2 {
				return nil, fmt.Errorf("%w: glyph %d: invalid UTF-8 in the Unicode table", ErrFormat, g)
			}
			f.Unicode[g] = append(f.Unicode[g], r)
			chars = chars[n:]
		}
		rest = rest[end+1:]
	}
	return f, nil
}

func (f *Font) rowBytes() int { return (f.Width + 7) / 8 }

// takeGlyphs checks the height and cuts the glyphs from data, returning
// what follows them.
func (f *Font) takeGlyphs(data []byte) ([]byte, error) {
	if f.Height == 0 || f.Height > MaxHeight {
		return nil, fmt.Errorf("font: glyphs %d pixels high; the console takes 1 to %d", f.Height, MaxHeight)
	}
	size := f.Count * f.Height * f.rowBytes()
	if len(data) < size {
		return nil, fmt.Errorf("%w: %d glyphs need %d bytes, %d left", ErrFormat, f.Count, size, len(data))
	}
	f.Glyphs = data[:size:size]
	return data[size:], nil
}

// KernelData returns the glyphs as KD_FONT_OP_SET takes them: each one
// padded to MaxHeight rows.
func (f *Font) KernelData() []byte {
	rb := f.rowBytes()
	glyph, padded := f.Height*rb, MaxHeight*rb
	out := make([]byte, f.Count*padded)
	for g := 0; g < f.Count; g++ {
		copy(out[g*padded:], f.Glyphs[g*glyph:(g+1)*glyph])
	}
	return out
}

// Pair maps a code point to a glyph, as struct unipair does.
type Pair struct{ Unicode, Glyph uint16 }

// Pairs lists the Unicode table as the kernel's PIO_UNIMAP takes it;
// code points beyond the Basic Multilingual Plane have no place there.
func (f *Font) Pairs() []Pair {
	var out []Pair
	for g, rs := range f.Unicode {
		for _, r := range rs {
			if r <= 0xFFFF {
				out = append(out, Pair{Unicode: uint16(r), Glyph: uint16(g)})
			}
		}
	}
	return out
}

// String describes the font for logs: "512 glyphs of 8x16".
func (f *Font) String() string {
	return fmt.Sprintf("%d glyphs of %dx%d", f.Count, f.Width, f.Height)
}
