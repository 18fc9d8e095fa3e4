package kmod

// MatchPattern reports whether s matches the alias pattern, with the
// semantics of fnmatch(3) without flags, which is what kmod uses for
// modules.alias:
//   - '*' matches any string, including '/' and the empty string;
//   - '?' matches any one byte;
//   - '[...]' matches one byte of a set: ranges "a-z", negation by a leading
//     '!' or '^', ']' taken literally when it comes first; a '[' with no
//     closing ']' matches itself;
//   - '\' makes the next byte literal.
//
// Character classes ("[:alpha:]") are not supported: module aliases do not
// use them. Matching works on bytes.
func MatchPattern(pattern, s string) bool {
	px, sx := 0, 0
	// Where to resume after a mismatch: the last '*' seen, and the position
	// in s it should try to swallow up to next.
	starPx, starSx := -1, 0
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			if pattern[px] == '*' {
				starPx, starSx = px, sx+1
				px++
				continue
			}
			if sx < len(s) {
				if w, ok := matchOne(pattern[px:], s[sx]); ok {
					px += w
					sx++
					continue
				}
			}
		}
		if starPx >= 0 && starSx <= len(s) {
			px, sx = starPx, starSx
			continue
		}
		return false
	}
	return true
}

// matchOne matches byte c against the single-byte element at the start of p
// (not '*') and returns the element's width in p.
func matchOne(p string, c byte) (width int, ok bool) {
	switch p[0] {
	case '?':
		return 1, true
	case '\\':
		if len(p) > 1 {
			return 2, p[1] == c
		}
		return 1, c == '\\'
	case '[':
		if w, ok, valid := matchBracket(p, c); valid {
			return w, ok
		}
		return 1, c == '['
	}
	return 1, p[0] == c
}

// matchBracket matches c against the bracket expression at the start of p.
// valid is false when the expression has no closing ']'.
func matchBracket(p string, c byte) (width int, ok, valid bool) {
	i := 1
	negate := false
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		negate = true
		i++
	}
	matched := false
	for first := true; i < len(p); first = false {
		lo := p[i]
		if lo == ']' && !first {
			return i + 1, matched != negate, true
		}
		if lo == '\\' && i+1 < len(p) {
			i++
			lo = p[i]
		}
		i++
		hi := lo
		if i+1 < len(p) && p[i] == '-' && p[i+1] != ']' {
			hi = p[i+1]
			i += 2
			if hi == '\\' && i < len(p) {
				hi = p[i]
				i++
			}
		}
		if lo <= c && c <= hi {
			matched = true
		}
	}
	return 0, false, false
}

// literalPrefix returns the part of a pattern before its first special
// character: every string the pattern matches starts with it.
func literalPrefix(pattern string) string {
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '*', '?', '[', '\\':
			return pattern[:i]
		}
	}
	return pattern
}
