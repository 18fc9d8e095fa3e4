package fstree

import (
	"fmt"
	"path"
	"strings"
)

// Matcher matches image paths against glob patterns in which "*", "?" and
// "[...]" work as in path.Match within one path element and an element "**"
// matches any number of elements, including none: "usr/share/doc/**"
// matches usr/share/doc itself and everything below it.
type Matcher struct {
	patterns [][]string
}

// NewMatcher compiles patterns (leading "/" optional) and reports the first
// malformed one.
func NewMatcher(patterns []string) (*Matcher, error) {
	m := &Matcher{}
	for _, p := range patterns {
		if err := ValidPattern(p); err != nil {
			return nil, err
		}
		m.patterns = append(m.patterns, strings.Split(Clean(p), "/"))
	}
	return m, nil
}

// ValidPattern reports why p is not a well-formed pattern (see Matcher):
// an element path.Match rejects (an unclosed "[", an empty or open-ended
// range, a trailing "\\"), or nothing but "/", which names only the root.
func ValidPattern(p string) error {
	clean := Clean(p)
	if clean == "" {
		return fmt.Errorf("pattern %q: %w: it names only the image root", p, path.ErrBadPattern)
	}
	for _, e := range strings.Split(clean, "/") {
		if _, err := path.Match(e, ""); err != nil {
			return fmt.Errorf("pattern %q: %w", p, err)
		}
	}
	return nil
}

// Match reports whether imagePath matches any pattern.
func (m *Matcher) Match(imagePath string) bool {
	name := strings.Split(Clean(imagePath), "/")
	for _, p := range m.patterns {
		if matchElems(p, name) {
			return true
		}
	}
	return false
}

// Match reports whether imagePath matches any of patterns (see Matcher);
// malformed patterns match nothing. Use ValidPattern or NewMatcher to
// validate patterns.
func Match(patterns []string, imagePath string) bool {
	name := strings.Split(Clean(imagePath), "/")
	for _, p := range patterns {
		if matchElems(strings.Split(Clean(p), "/"), name) {
			return true
		}
	}
	return false
}

func matchElems(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for len(pat) > 0 && pat[0] == "**" {
				pat = pat[1:]
			}
			if len(pat) == 0 {
				return true
			}
			for i := range name {
				if matchElems(pat, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, err := path.Match(pat[0], name[0]); err != nil || !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
