package blkid

import "io"

const (
	isoSectorSize = 2048
	isoVDStart    = 0x8000
	isoVDMax      = 16
)

// probeISO9660 scans the volume descriptors from 32 KiB for the primary
// descriptor and a Joliet supplementary one. The UUID is the PVD's
// modification (else creation) date; the label is the Joliet volume id
// merged with the longer ASCII one (libblkid's merge_utf16be_ascii).
func probeISO9660(h head, r io.ReaderAt) (*Info, error) {
	if !h.has(isoVDStart+1, "CD001") {
		return nil, nil
	}
	var pvd, joliet []byte
	for i := 0; i < isoVDMax && (pvd == nil || joliet == nil); i++ {
		off := isoVDStart + i*isoSectorSize
		vd := h.at(off, isoSectorSize)
		if vd == nil {
			b, err := readAt(r, int64(off), isoSectorSize)
			if err != nil {
				break
			}
			vd = b
		}
		if vd[0] == 0xFF || string(vd[1:6]) != "CD001" {
			break
		}
		switch {
		case vd[0] == 1 && pvd == nil:
			pvd = vd
		case vd[0] == 2 && joliet == nil:
			if esc := string(vd[88:91]); esc == "%/@" || esc == "%/C" || esc == "%/E" {
				joliet = vd
			}
		}
	}
	if pvd == nil {
		return nil, nil
	}
	info := &Info{Type: "iso9660", Usage: UsageFilesystem}
	if info.UUID = isoDate(pvd[830:847]); info.UUID == "" {
		info.UUID = isoDate(pvd[813:830])
	}
	switch {
	case joliet != nil:
		info.Version = "Joliet Extension"
		if merged := mergeUTF16ASCII(joliet[40:72], pvd[40:72]); merged != nil {
			info.Label = utf16String(merged, true)
		} else {
			info.Label = utf16String(joliet[40:72], true)
		}
	default:
		info.Label = cString(pvd[40:72])
	}
	return info, nil
}

// isoDate turns a 17-byte ISO 9660 date (16 digits and a zone) into
// "YYYY-MM-DD-HH-MM-SS-CC"; all '0' with zone 0 means unset.
func isoDate(d []byte) string {
	unset := d[16] == 0
	for _, c := range d[:16] {
		if c != '0' {
			unset = false
		}
	}
	if unset {
		return ""
	}
	s := string(d[:16])
	return s[0:4] + "-" + s[4:6] + "-" + s[6:8] + "-" + s[8:10] + "-" + s[10:12] + "-" + s[12:14] + "-" + s[14:16]
}

// mergeUTF16ASCII rebuilds a label longer than Joliet's 16 characters: if
// the UTF-16BE Joliet id is a prefix of the ASCII PVD id (where '_' stands
// for a character ASCII cannot hold, and case may differ), take the Joliet
// characters and append the rest of the ASCII id. It returns nil if they
// disagree.
func mergeUTF16ASCII(u16, ascii []byte) []byte {
	n := len(ascii)
	out := make([]byte, 0, 2*n+4)
	a, u := 0, 0
	for ; u+1 < n && a < n; a, u = a+1, u+2 {
		// A surrogate pair stands for one ASCII character.
		if u16[u] >= 0xD8 && u16[u] <= 0xDB && u+3 < n && u16[u+2] >= 0xDC && u16[u+2] <= 0xDF {
			out = append(out, u16[u], u16[u+1])
			u += 2
		}
		switch {
		case ascii[a] == '_':
			out = append(out, u16[u], u16[u+1])
		case u16[u] == 0 && u16[u+1] == '_':
			out = append(out, 0, ascii[a])
		case u16[u] == 0 && asciiUpper(ascii[a]) == asciiUpper(u16[u+1]):
			c := ascii[a]
			if ascii[a] >= 'A' && ascii[a] <= 'Z' {
				c = u16[u+1]
			}
			out = append(out, 0, c)
		default:
			return nil
		}
	}
	for ; a < n; a++ {
		out = append(out, 0, ascii[a])
	}
	return out
}

func asciiUpper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}
