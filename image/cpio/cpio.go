// Package cpio reads and writes "newc" (magic 070701) and "crc" (070702)
// cpio archives, the only formats the Linux kernel unpacks as an initramfs.
// The API follows archive/tar: a Writer with WriteHeader, Write and Close,
// and a Reader with Next and Read.
//
// It exists instead of github.com/cavaliergopher/cpio because that package
// cannot write device numbers (rdevmajor/rdevminor, needed for /dev/console)
// and silently truncates header fields that do not fit; this one writes every
// field and reports overflow as ErrFieldTooLong.
//
// Layout of one entry (K: Documentation/driver-api/early-userspace/buffer-format.rst):
// a 110-byte header (6-byte magic and 13 fields of 8 hex digits), the name
// with its NUL, NUL padding to a 4-byte boundary, the data, NUL padding to a
// 4-byte boundary. An archive ends with an entry named TRAILER!!!.
package cpio

import (
	"errors"
	"fmt"
	"io/fs"
)

// File type bits of Header.Mode (the S_IFMT values of the Linux ABI).
const (
	TypeMask    = 0o170000
	TypeSocket  = 0o140000
	TypeSymlink = 0o120000
	TypeReg     = 0o100000
	TypeBlock   = 0o060000
	TypeDir     = 0o040000
	TypeChar    = 0o020000
	TypeFifo    = 0o010000
)

// Permission-related bits of Header.Mode beyond the rwx bits.
const (
	ModeSetuid = 0o4000
	ModeSetgid = 0o2000
	ModeSticky = 0o1000
	ModePerm   = 0o777
)

// Trailer is the name of the entry that ends an archive.
const Trailer = "TRAILER!!!"

const (
	magicNewc  = "070701"
	magicCRC   = "070702"
	magicODC   = "070707"
	headerSize = 110
	maxUint32  = 1<<32 - 1
)

// Limits the Reader applies before allocating memory for a name or a symlink
// target. The kernel itself skips names and targets longer than PATH_MAX
// (4096); these limits are higher so that odd but valid archives still read.
const (
	MaxNameSize     = 1 << 20
	MaxLinknameSize = 1 << 16
)

// Format selects the archive variant a Writer produces.
type Format int

const (
	// FormatNewc is the "newc" format (magic 070701, checksum field 0).
	FormatNewc Format = iota
	// FormatCRC is the "crc" format (magic 070702): the header carries the
	// 32-bit sum of the bytes of a regular file's data, which the kernel
	// verifies.
	FormatCRC
)

func (f Format) String() string {
	switch f {
	case FormatNewc:
		return "newc"
	case FormatCRC:
		return "crc"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

var (
	// ErrHeader reports a corrupt or unsupported entry header; the error
	// returned is a *FormatError that wraps it and names the offset.
	ErrHeader = errors.New("cpio: invalid header")
	// ErrChecksum reports a data checksum mismatch in a 070702 archive.
	ErrChecksum = errors.New("cpio: bad data checksum")
	// ErrWriteTooLong reports data written beyond the Size of the entry.
	ErrWriteTooLong = errors.New("cpio: write too long")
	// ErrFieldTooLong reports a header value that does not fit its field
	// (8 hex digits: sizes and mtimes must be below 2^32).
	ErrFieldTooLong = errors.New("cpio: header field too long")
	// ErrWriteAfterClose reports a call on a Writer after Close.
	ErrWriteAfterClose = errors.New("cpio: write after close")
)

// FormatError describes corrupt input found by the Reader.
type FormatError struct {
	Offset int64  // byte offset in the archive of the entry (or field) at fault
	Name   string // entry name, if it was read
	Reason string
	Err    error // ErrHeader or ErrChecksum, or an I/O error such as io.ErrUnexpectedEOF
}

func (e *FormatError) Error() string {
	s := fmt.Sprintf("cpio: offset %d", e.Offset)
	if e.Name != "" {
		s += fmt.Sprintf(" (entry %q)", e.Name)
	}
	s += ": " + e.Reason
	if e.Err != nil && e.Err != ErrHeader && e.Err != ErrChecksum {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *FormatError) Unwrap() error { return e.Err }

// Header describes one archive entry. Fields that do not apply to the entry's
// type are 0 or empty.
type Header struct {
	Name      string // path inside the archive, conventionally without leading "/" or "./"
	Mode      uint32 // file type bits (TypeReg, TypeDir, ...) | permission bits
	Uid, Gid  uint32
	Nlink     uint32
	Mtime     int64  // seconds since the epoch, 0 ≤ Mtime < 2^32
	Size      int64  // data length of a regular file, < 2^32; 0 for every other type
	Ino       uint32 // inode number; with DevMajor/DevMinor it identifies hard links
	DevMajor  uint32 // device holding the file
	DevMinor  uint32
	RdevMajor uint32 // device numbers of a character or block device entry
	RdevMinor uint32
	Linkname  string // symlink target, stored as the entry's data
	Checksum  uint32 // FormatCRC: sum of the data bytes of a regular file (the Reader fills it, the Writer checks it)
}

// Type returns the file type bits of h.Mode.
func (h *Header) Type() uint32 { return h.Mode & TypeMask }

// FileMode returns h.Mode as an fs.FileMode (type, permission and
// setuid/setgid/sticky bits).
func (h *Header) FileMode() fs.FileMode {
	m := fs.FileMode(h.Mode & ModePerm)
	if h.Mode&ModeSetuid != 0 {
		m |= fs.ModeSetuid
	}
	if h.Mode&ModeSetgid != 0 {
		m |= fs.ModeSetgid
	}
	if h.Mode&ModeSticky != 0 {
		m |= fs.ModeSticky
	}
	switch h.Type() {
	case TypeDir:
		m |= fs.ModeDir
	case TypeSymlink:
		m |= fs.ModeSymlink
	case TypeChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case TypeBlock:
		m |= fs.ModeDevice
	case TypeFifo:
		m |= fs.ModeNamedPipe
	case TypeSocket:
		m |= fs.ModeSocket
	case TypeReg:
	default:
		m |= fs.ModeIrregular
	}
	return m
}

// ModeFromFileMode converts the type and permission bits of an fs.FileMode
// to a Header.Mode value.
func ModeFromFileMode(m fs.FileMode) uint32 {
	mode := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= ModeSetuid
	}
	if m&fs.ModeSetgid != 0 {
		mode |= ModeSetgid
	}
	if m&fs.ModeSticky != 0 {
		mode |= ModeSticky
	}
	switch {
	case m.IsDir():
		mode |= TypeDir
	case m&fs.ModeSymlink != 0:
		mode |= TypeSymlink
	case m&fs.ModeCharDevice != 0:
		mode |= TypeChar
	case m&fs.ModeDevice != 0:
		mode |= TypeBlock
	case m&fs.ModeNamedPipe != 0:
		mode |= TypeFifo
	case m&fs.ModeSocket != 0:
		mode |= TypeSocket
	default:
		mode |= TypeReg
	}
	return mode
}

func knownType(t uint32) bool {
	switch t {
	case TypeReg, TypeDir, TypeSymlink, TypeChar, TypeBlock, TypeFifo, TypeSocket:
		return true
	}
	return false
}

// align4 returns the number of NUL bytes that pad off to a multiple of 4.
func align4(off int64) int64 { return (4 - off&3) & 3 }
