package kmod

import (
	"path"
	"strings"
	"testing"
)

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		// Real aliases against real modalias strings.
		{"virtio:d00000002v*", "virtio:d00000002v00001AF4", true},
		{"virtio:d00000001v*", "virtio:d00000002v00001AF4", false},
		{"pci:v00001AF4d00001001sv*sd*bc*sc*i*", "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", true},
		{"pci:v00001AF4d00001001sv*sd*bc*sc*i*", "pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00", false},
		// ahci's class alias: any vendor, class 01 subclass 06 interface 01.
		{"pci:v*d*sv*sd*bc01sc06i01*", "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01", true},
		{"pci:v*d*sv*sd*bc01sc06i01*", "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i00", false},
		{"pci:v00008086d00002922sv*sd*bc*sc*i*", "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01", true},
		// nvme's class alias.
		{"pci:v*d*sv*sd*bc01sc08i02*", "pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02", true},
		// usb-storage style with bracket ranges (from usb-storage's real aliases).
		{"usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*", "usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00", true},
		{"usb:v05E3p0723d9[0-3]*dc*dsc*dp*ic*isc*ip*in*", "usb:v05E3p0723d9451dc00dsc00dp00ic08isc06ip50in00", false},
		{"usb:v05E3p0723d9[0-4]*dc*dsc*dp*ic*isc*ip*in*", "usb:v05E3p0723d9451dc00dsc00dp00ic08isc06ip50in00", true},
		{"usb:v0BC2p2[0-9A-F]*", "usb:v0BC2p2C00d", true},
		{"usb:v0BC2p2[0-9A-F]*", "usb:v0BC2p2c00d", false},
		{"acpi*:PNP0A03:*", "acpi:PNP0A03:", true},
		{"acpi*:PNP0A03:*", "acpi:PNP0A08:PNP0A03:", true},
		{"acpi*:PNP0A03:*", "acpi:PNP0A08:", false},
		{"scsi:t-0x05*", "scsi:t-0x05", true},
		{"cpu:type:x86,ven*fam*mod*:feature:*0081*", "cpu:type:x86,ven0000fam0006mod003A:feature:,0000,0081,", true},
		// Plain names (softdeps resolved through aliases).
		{"crypto-crc32c", "crypto-crc32c", true},
		{"crypto-crc32c", "crypto-crc32", false},
		{"fs-*", "fs-ext4", true},
		// Corner cases of fnmatch without flags.
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "a/b", true},
		{"a*b*c", "abbbc", true},
		{"a*b*c", "acb", false},
		{"a**c", "abc", true},
		{"?", "", false},
		{"a?c", "a/c", true},
		{"[!a]", "b", true},
		{"[!a]", "a", false},
		{"[^a]", "a", false},
		{"[]]", "]", true},
		{"[!]]", "]", false},
		{"[a-]", "-", true},
		{"[a-c]x", "bx", true},
		{"[abc", "[abc", true},
		{"[abc", "a", false},
		{`\*`, "*", true},
		{`\*`, "a", false},
		{`a\`, `a\`, true},
		{`[\]]`, "]", true},
		{"*a", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", false},
	}
	for _, tt := range tests {
		if got := MatchPattern(tt.pattern, tt.s); got != tt.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestLiteralPrefix(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{"pci:v00001AF4d*", "pci:v00001AF4d"},
		{"acpi*:PNP0A03:*", "acpi"},
		{"crc32c", "crc32c"},
		{`a\*`, "a"},
		{"[ab]", ""},
	}
	for _, tt := range tests {
		if got := literalPrefix(tt.pattern); got != tt.want {
			t.Errorf("literalPrefix(%q) = %q, want %q", tt.pattern, got, tt.want)
		}
	}
}

// refMatch is a straightforward recursive fnmatch, memoized on positions,
// used as the reference in FuzzMatchPattern.
func refMatch(p, s string) bool {
	memo := map[[2]int]bool{}
	var rec func(pi, si int) bool
	rec = func(pi, si int) bool {
		key := [2]int{pi, si}
		if v, ok := memo[key]; ok {
			return v
		}
		var r bool
		switch {
		case pi == len(p):
			r = si == len(s)
		case p[pi] == '*':
			r = rec(pi+1, si) || (si < len(s) && rec(pi, si+1))
		case si < len(s):
			w, ok := matchOne(p[pi:], s[si])
			r = ok && rec(pi+w, si+1)
		}
		memo[key] = r
		return r
	}
	return rec(0, 0)
}

func FuzzMatchPattern(f *testing.F) {
	f.Add("pci:v00001AF4d00001001sv*sd*bc*sc*i*", "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00")
	f.Add("usb:v05E3p0723d9[0-4]*dc*", "usb:v05E3p0723d9451dc00")
	f.Add("[!]a-c]*?", "]b")
	f.Add(`\[*[\]`, "[x]")
	f.Fuzz(func(t *testing.T, p, s string) {
		got := MatchPattern(p, s)
		if want := refMatch(p, s); got != want {
			t.Fatalf("MatchPattern(%q, %q) = %v, reference says %v", p, s, got, want)
		}
		// path.Match agrees wherever its syntax is the same as fnmatch's:
		// ASCII (it works on runes), no '/', no '!' negation, and a pattern
		// it accepts.
		if isASCII(p+s) && !strings.ContainsAny(p+s, "/!") {
			if want, err := path.Match(p, s); err == nil && got != want {
				t.Fatalf("MatchPattern(%q, %q) = %v, path.Match says %v", p, s, got, want)
			}
		}
		if got && !strings.HasPrefix(s, literalPrefix(p)) {
			t.Fatalf("MatchPattern(%q, %q) matched without the literal prefix %q", p, s, literalPrefix(p))
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
