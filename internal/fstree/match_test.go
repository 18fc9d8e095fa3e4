package fstree

import "testing"

func TestMatch(t *testing.T) {
	patterns := []string{
		"usr/share/doc/**",
		"/usr/share/man/**",
		"usr/share/locale/**",
		"usr/lib/*-linux-gnu/gconv/**",
		"**/*.pyc",
		"usr/share/lintian/**",
		"etc/*.d/README",
	}
	tests := []struct {
		path string
		want bool
	}{
		{"usr/share/doc", true},
		{"usr/share/doc/busybox/copyright", true},
		{"/usr/share/man/man1/ls.1.gz", true},
		{"usr/share/locale/de/LC_MESSAGES/e2fsprogs.mo", true},
		{"usr/lib/x86_64-linux-gnu/gconv/gconv-modules", true},
		{"usr/lib/x86_64-linux-gnu/libc.so.6", false},
		{"usr/lib/python3/dist-packages/x/__pycache__/y.pyc", true},
		{"y.pyc", true},
		{"etc/modprobe.d/README", true},
		{"etc/modprobe.d/sub/README", false},
		{"usr/share/docs", false},
		{"usr/share", false},
		{"usr/bin/busybox", false},
		{"", false},
	}
	m, err := NewMatcher(patterns)
	if err != nil {
		t.Fatalf("NewMatcher = %v", err)
	}
	for _, tt := range tests {
		if got := Match(patterns, tt.path); got != tt.want {
			t.Errorf("Match(%q) = %v, want %v", tt.path, got, tt.want)
		}
		if got := m.Match(tt.path); got != tt.want {
			t.Errorf("Matcher.Match(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
	for _, pats := range [][]string{{"**"}, {"a/**/b/**"}} {
		m, _ := NewMatcher(pats)
		for _, p := range []string{"a/x/b", "a/b/c/d"} {
			if !m.Match(p) || !Match(pats, p) {
				t.Errorf("Match(%q, %q) = false, want true", pats, p)
			}
		}
	}
	if _, err := NewMatcher([]string{"usr/[a"}); err == nil {
		t.Errorf("NewMatcher(usr/[a) = nil error, want a bad-pattern error")
	}
}
