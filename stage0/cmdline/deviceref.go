package cmdline

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// RefKind says how a DeviceRef names its device.
type RefKind int

// Kinds of device references.
const (
	None      RefKind = iota // no reference given
	Path                     // a device node path, e.g. /dev/vda1 or /dev/mapper/root
	UUID                     // filesystem/container UUID (UUID=, /dev/disk/by-uuid/)
	Label                    // filesystem label (LABEL=, /dev/disk/by-label/)
	PartUUID                 // partition-table entry UUID (PARTUUID=, /dev/disk/by-partuuid/)
	PartLabel                // GPT partition name (PARTLABEL=, /dev/disk/by-partlabel/)
	Devno                    // major:minor
	Live                     // live:… (dracut dmsquash-live), kept raw for the live feature
)

func (k RefKind) String() string {
	switch k {
	case None:
		return "none"
	case Path:
		return "path"
	case UUID:
		return "UUID"
	case Label:
		return "LABEL"
	case PartUUID:
		return "PARTUUID"
	case PartLabel:
		return "PARTLABEL"
	case Devno:
		return "devno"
	case Live:
		return "live"
	}
	return fmt.Sprintf("RefKind(%d)", int(k))
}

// DeviceRef is a reference to a block device as written in root=, in
// crypttab and in the other places that use the fstab vocabulary.
type DeviceRef struct {
	Kind  RefKind
	Value string // the UUID, label, path, or the part after "live:"
	// PartNrOff is the PARTUUID=…/PARTNROFF=n offset (kernel syntax): the
	// partition n entries after the one with the UUID.
	PartNrOff    int
	Major, Minor uint32 // Devno
	Raw          string // the text as given
}

// String returns the reference as given on the command line.
func (r DeviceRef) String() string {
	if r.Raw != "" {
		return r.Raw
	}
	if r.Kind == None {
		return "(none)"
	}
	return r.Kind.String() + "=" + r.Value
}

// ParseDeviceRef parses the forms root= accepts: UUID=, PARTUUID=[/PARTNROFF=n],
// LABEL=, PARTLABEL=, /dev/… (including /dev/disk/by-{uuid,label,partuuid,
// partlabel}/…, with udev's \xNN escapes), major:minor, and live:… (kept
// raw). An empty string is a None reference.
func ParseDeviceRef(s string) (DeviceRef, error) {
	r := DeviceRef{Raw: s}
	switch {
	case s == "":
		return r, nil
	case strings.HasPrefix(s, "live:"):
		r.Kind, r.Value = Live, strings.TrimPrefix(s, "live:")
		return r, nil
	case hasPrefixFold(s, "UUID="):
		r.Kind, r.Value = UUID, s[len("UUID="):]
	case hasPrefixFold(s, "PARTUUID="):
		r.Kind, r.Value = PartUUID, s[len("PARTUUID="):]
		if v, off, ok := strings.Cut(r.Value, "/"); ok {
			n, found := strings.CutPrefix(off, "PARTNROFF=")
			i, err := strconv.Atoi(n)
			if !found || err != nil {
				return r, fmt.Errorf("bad PARTNROFF in %q", s)
			}
			r.Value, r.PartNrOff = v, i
		}
	case hasPrefixFold(s, "LABEL="):
		r.Kind, r.Value = Label, s[len("LABEL="):]
	case hasPrefixFold(s, "PARTLABEL="):
		r.Kind, r.Value = PartLabel, s[len("PARTLABEL="):]
	case strings.HasPrefix(s, "/dev/disk/by-"):
		dir, name, _ := strings.Cut(strings.TrimPrefix(s, "/dev/disk/by-"), "/")
		kinds := map[string]RefKind{"uuid": UUID, "label": Label, "partuuid": PartUUID, "partlabel": PartLabel}
		k, ok := kinds[dir]
		if !ok || name == "" || strings.Contains(name, "/") {
			// by-id, by-path, …: udev-only names; treat as a plain path.
			r.Kind, r.Value = Path, s
			return r, nil
		}
		r.Kind, r.Value = k, UnescapeUdev(name)
	case strings.HasPrefix(s, "/"):
		r.Kind, r.Value = Path, s
	default:
		maj, min, ok := strings.Cut(s, ":")
		a, err1 := strconv.ParseUint(maj, 10, 32)
		b, err2 := strconv.ParseUint(min, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			return r, fmt.Errorf("unsupported device reference %q (want UUID=, LABEL=, PARTUUID=, PARTLABEL=, /dev/… or major:minor)", s)
		}
		r.Kind, r.Major, r.Minor = Devno, uint32(a), uint32(b)
		r.Value = s
		return r, nil
	}
	if r.Value == "" {
		return DeviceRef{Raw: s}, fmt.Errorf("empty value in %q", s)
	}
	return r, nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// UnescapeUdev decodes the \xNN escapes udev uses in /dev/disk/by-* names.
func UnescapeUdev(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// EscapeUdev encodes s the way udev (libblkid's blkid_encode_string) does
// for /dev/disk/by-* names: valid multi-byte UTF-8 and [0-9A-Za-z#+-.:=@_]
// stay, every other byte (blanks, '/', '\\') becomes \xNN.
func EscapeUdev(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			if r, n := utf8.DecodeRuneInString(s[i:]); r != utf8.RuneError || n > 1 {
				b.WriteString(s[i : i+n])
				i += n
				continue
			}
		}
		if c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || strings.IndexByte("#+-.:=@_", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, `\x%02x`, c)
		}
		i++
	}
	return b.String()
}
