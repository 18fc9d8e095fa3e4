package hostinfo

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
)

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
