package hostinfo

import (
	"bufio"
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

// LUKS header layout (cryptsetup's docs/on-disk-format.pdf and
// on-disk-format-luks2.pdf): both versions start with the magic and a
// big-endian u16 version; LUKS1 has cipher_name[32] at 8 and
// cipher_mode[32] at 40; LUKS2's binary header has hdr_size (u64, header
// plus JSON area) at 8 and its JSON area starts at 4096.
const luksMagic = "LUKS\xba\xbe"

const (
	luks2JSONOffset = 4096
	// LUKSHeaderMax is how much of a device ParseLUKS may need: LUKS2's
	// largest header (binary header and JSON area) is 4 MiB.
	LUKSHeaderMax = 4 << 20
)

// ErrNotLUKS is returned by ParseLUKS for data without a LUKS header.
var ErrNotLUKS = errors.New("hostinfo: not a LUKS header")

// LUKS is what a LUKS header says about the kernel crypto a device needs.
type LUKS struct {
	Version int
	// Ciphers are the dm-crypt cipher specifications of the data segments
	// ("aes-xts-plain64") and of the keyslot areas, which cryptsetup
	// decrypts through the kernel crypto API: each once, in order.
	Ciphers []string
	// Integrity names the dm-integrity algorithms of LUKS2 segments with
	// authenticated encryption ("hmac(sha256)"), if any.
	Integrity []string
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

// ParseLUKS reads the LUKS1 or LUKS2 header at the start of r (a device or
// an image of one).
func ParseLUKS(r io.Reader) (LUKS, error) {
	var bin [luks2JSONOffset]byte
	n, err := io.ReadFull(r, bin[:])
	if n < 72 || string(bin[:6]) != luksMagic {
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return LUKS{}, fmt.Errorf("luks header: %w", err)
		}
		return LUKS{}, ErrNotLUKS
	}
	l := LUKS{Version: int(binary.BigEndian.Uint16(bin[6:8]))}
	switch l.Version {
	case 1:
		name, mode := cString(bin[8:40]), cString(bin[40:72])
		if name == "" || mode == "" {
			return l, fmt.Errorf("luks1 header: empty cipher %q mode %q", name, mode)
		}
		l.Ciphers = []string{name + "-" + mode}
		return l, nil
	case 2:
	default:
		return l, fmt.Errorf("luks header: unknown version %d", l.Version)
	}
	if err != nil {
		return l, fmt.Errorf("luks2 header: %w", err)
	}
	size := binary.BigEndian.Uint64(bin[8:16])
	if size <= luks2JSONOffset || size > LUKSHeaderMax {
		return l, fmt.Errorf("luks2 header: bad header size %d", size)
	}
	area := make([]byte, size-luks2JSONOffset)
	if _, err := io.ReadFull(r, area); err != nil {
		return l, fmt.Errorf("luks2 json area: %w", err)
	}
	if i := bytes.IndexByte(area, 0); i >= 0 {
		area = area[:i]
	}
	var meta luks2JSON
	if err := json.Unmarshal(area, &meta); err != nil {
		return l, fmt.Errorf("luks2 json area: %w", err)
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
		l.Ciphers = add(l.Ciphers, s.Encryption)
		if s.Integrity != nil {
			l.Integrity = add(l.Integrity, s.Integrity.Type)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(meta.Keyslots)) {
		l.Ciphers = add(l.Ciphers, meta.Keyslots[k].Area.Encryption)
	}
	if len(l.Ciphers) == 0 {
		return l, fmt.Errorf("luks2 json area: no crypt segment or keyslot names a cipher")
	}
	return l, nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

// CipherAlgorithms returns the kernel crypto algorithm names dm-crypt
// instantiates for a cipher specification, each once: the cipher, the
// chaining mode and what the IV generator uses.
//
//	aes-xts-plain64             → aes, xts
//	aes-cbc-essiv:sha256        → aes, cbc, essiv, sha256
//	serpent-cbc-lmk             → serpent, cbc, md5
//	xchacha20,aes-adiantum-plain64 → xchacha20, aes, adiantum
//	capi:xts(aes)-plain64       → xts, aes
//
// IV generators built into dm-crypt (plain, plain64, plain64be, benbi, null,
// random, eboiv) need nothing; lmk uses md5, tcw crc32, elephant ecb.
func CipherAlgorithms(spec string) []string {
	var out []string
	add := func(names ...string) {
		for _, n := range names {
			n = strings.TrimSpace(n)
			if n != "" && !strings.ContainsAny(n, " /") && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	iv := func(s string) {
		name, opt, _ := strings.Cut(s, ":")
		switch name {
		case "essiv":
			add("essiv", opt)
		case "lmk":
			add("md5")
		case "tcw":
			add("crc32")
		case "elephant":
			add("ecb")
		}
	}
	if capi, ok := strings.CutPrefix(spec, "capi:"); ok {
		// capi:TEMPLATE(ALG…)-IV: the algorithm part ends at the last ')'.
		algs, ivs := capi, ""
		if i := strings.LastIndexByte(capi, ')'); i >= 0 && i+1 < len(capi) && capi[i+1] == '-' {
			algs, ivs = capi[:i+1], capi[i+2:]
		}
		add(strings.FieldsFunc(algs, func(r rune) bool { return r == '(' || r == ')' || r == ',' })...)
		iv(ivs)
		return out
	}
	parts := strings.SplitN(spec, "-", 3)
	cipher, _, _ := strings.Cut(parts[0], ":") // "aes:64" (key count)
	add(strings.Split(cipher, ",")...)
	if len(parts) == 1 {
		add("cbc") // dm-crypt's default chaining mode (plain IV)
		return out
	}
	add(parts[1])
	if len(parts) == 3 {
		iv(parts[2])
	}
	return out
}

// CryptoAlg is one entry of /proc/crypto.
type CryptoAlg struct {
	Name, Driver, Module, Type string
}

// ParseCrypto parses /proc/crypto: blank-line separated records of
// "key : value" lines.
func ParseCrypto(r io.Reader) ([]CryptoAlg, error) {
	var out []CryptoAlg
	var cur CryptoAlg
	flush := func() {
		if cur.Name != "" {
			out = append(out, cur)
		}
		cur = CryptoAlg{}
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("crypto list: malformed line %q", line)
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "name":
			cur.Name = v
		case "driver":
			cur.Driver = v
		case "module":
			cur.Module = v
		case "type":
			cur.Type = v
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("crypto list: %w", err)
	}
	return out, nil
}
