package unpack

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/pkginitrd/pkginitrd/image/cpio"
	"github.com/pkginitrd/pkginitrd/internal/compress"
)

// maxRPMFile is the largest file the unpacker takes: rpm stores larger ones
// in a different payload format (07070X, sizes in the header only).
const maxRPMFile = 1<<32 - 1

// rpmCompressors maps PAYLOADCOMPRESSOR to the formats rpm writes.
func rpmCompressors() map[string]compress.Format {
	return map[string]compress.Format{"": compress.Gzip, "gzip": compress.Gzip, "zstd": compress.Zstd, "xz": compress.XZ, "lzma": compress.LZMA, "bzip2": compress.BZip2}
}

// rpmPayload returns the file entries of an RPM: its cpio payload,
// decompressed, with %ghost files left out (rpm creates them at install
// time, empty or not at all) and hard links turned into tar link entries.
// %config files are extracted as shipped: an image is always a fresh install.
func rpmPayload(r io.Reader) (entries, io.Closer, error) {
	p, err := readRPM(r)
	if err != nil {
		return nil, nil, err
	}
	files := make(map[string]RPMFile, len(p.Files))
	for _, f := range p.Files {
		if f.Size > maxRPMFile && f.Flags&rpmFileGhost == 0 {
			return nil, nil, fmt.Errorf("%s: %w: %d bytes, files of 4 GiB or more are refused", f.Path, ErrUnsupported, f.Size)
		}
		files[f.Path] = f
	}
	comp, ok := rpmCompressors()[p.Compressor]
	if !ok {
		return nil, nil, fmt.Errorf("%w: payload compressor %q", ErrUnsupported, p.Compressor)
	}
	dr, err := compress.NewReader(comp, r)
	if err != nil {
		return nil, nil, fmt.Errorf("payload: %w", err)
	}
	br := bufio.NewReader(dr)
	if magic, _ := br.Peek(6); bytes.Equal(magic, []byte("07070X")) {
		dr.Close()
		return nil, nil, fmt.Errorf("%w: payload in rpm's large-file format (files of 4 GiB or more)", ErrUnsupported)
	}
	return &rpmEntries{cr: cpio.NewReader(br), files: files, held: map[uint32][]*tar.Header{}, data: map[uint32]string{}}, dr, nil
}

// rpmEntries converts cpio headers to tar headers. rpm writes a set of hard
// links as entries without data followed by the one carrying it; those
// before are held back and returned as links to it right after it.
type rpmEntries struct {
	cr    *cpio.Reader
	files map[string]RPMFile
	held  map[uint32][]*tar.Header // inode → names waiting for the data
	data  map[uint32]string        // inode → name of the entry that had it
	queue []*tar.Header            // links to return before reading on
	eof   bool
}

func (e *rpmEntries) Read(b []byte) (int, error) { return e.cr.Read(b) }

func (e *rpmEntries) Next() (*tar.Header, error) {
	for {
		if len(e.queue) > 0 {
			h := e.queue[0]
			e.queue = e.queue[1:]
			return h, nil
		}
		if e.eof {
			return nil, io.EOF
		}
		ch, err := e.cr.Next()
		if err == io.EOF {
			e.flush()
			e.eof = true
			continue
		}
		if err != nil {
			return nil, err
		}
		h, err := e.convert(ch)
		if err != nil || h != nil {
			return h, err
		}
	}
}

// convert returns the tar header for a cpio entry, or nil for an entry
// skipped or held back.
func (e *rpmEntries) convert(ch *cpio.Header) (*tar.Header, error) {
	name := strings.TrimPrefix(ch.Name, ".")
	if f, ok := e.files[path.Clean("/"+name)]; ok && f.Flags&rpmFileGhost != 0 {
		return nil, nil
	}
	rel := strings.TrimPrefix(name, "/")
	if path.IsAbs(ch.Name) || rel == "" {
		rel = ch.Name // entryName refuses absolute names; "" / "." is the root
	}
	h := &tar.Header{Name: rel, Mode: int64(ch.Mode & 0o7777), Size: ch.Size, Linkname: ch.Linkname}
	switch ch.Type() {
	case cpio.TypeDir:
		h.Typeflag = tar.TypeDir
	case cpio.TypeSymlink:
		h.Typeflag = tar.TypeSymlink
	case cpio.TypeReg:
		h.Typeflag = tar.TypeReg
		if ch.Nlink > 1 {
			return e.hardlink(ch.Ino, h), nil
		}
	default:
		// Devices, FIFOs, sockets: never in an image's packages.
		return nil, fmt.Errorf("%s: %w: file type %#o", ch.Name, ErrUnsafePath, ch.Type())
	}
	return h, nil
}

// hardlink handles one name of a multiply-linked file.
func (e *rpmEntries) hardlink(ino uint32, h *tar.Header) *tar.Header {
	if first, ok := e.data[ino]; ok {
		return &tar.Header{Name: h.Name, Typeflag: tar.TypeLink, Linkname: first}
	}
	if h.Size == 0 {
		e.held[ino] = append(e.held[ino], h)
		return nil
	}
	e.data[ino] = h.Name
	for _, l := range e.held[ino] {
		e.queue = append(e.queue, &tar.Header{Name: l.Name, Typeflag: tar.TypeLink, Linkname: h.Name})
	}
	delete(e.held, ino)
	return h
}

// flush returns the sets of links that never got data: empty files.
func (e *rpmEntries) flush() {
	for _, hs := range e.held {
		e.queue = append(e.queue, hs[0])
		for _, l := range hs[1:] {
			e.queue = append(e.queue, &tar.Header{Name: l.Name, Typeflag: tar.TypeLink, Linkname: hs[0].Name})
		}
	}
	e.held = nil
}
