package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("boom")
	}
	f.n--
	return copy(p, "x"), nil
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, &failingReader{n: 3}, 0o644); err == nil {
		t.Fatal("Write(failing reader) = nil error")
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Errorf("after failed Write, target = %q, want old contents", b)
	}
	if err := Write(p, strings.NewReader("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	info, _ := os.Stat(p)
	if string(b) != "new" || info.Mode().Perm() != 0o644 {
		t.Errorf("Write = %q mode %v, want new 0644", b, info.Mode())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
	var _ io.Reader = &failingReader{}
}

// TestSet prepares two outputs and checks that the targets change only
// when the whole set commits, and that no temporary file remains.
func TestSet(t *testing.T) {
	tests := []struct {
		name    string
		run     func(s *Set, a, b *File) error // writes "new" to the files and maybe commits
		wantErr bool
		want    [2]string // contents of the targets afterwards
	}{
		{"commit", func(s *Set, a, b *File) error {
			io.WriteString(a, "new a")
			io.WriteString(b, "new b")
			return s.Commit()
		}, false, [2]string{"new a", "new b"}},
		{"error while writing the second", func(s *Set, a, b *File) error {
			io.WriteString(a, "new a")
			return errors.New("boom")
		}, true, [2]string{"old a", "old b"}},
		{"second fails to sync", func(s *Set, a, b *File) error {
			io.WriteString(a, "new a")
			io.WriteString(b, "new b")
			b.tmp.Close()
			return s.Commit()
		}, true, [2]string{"old a", "old b"}},
		{"second committed alone, set not", func(s *Set, a, b *File) error {
			io.WriteString(b, "new b")
			return b.Commit()
		}, false, [2]string{"old a", "new b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			paths := [2]string{filepath.Join(dir, "a"), filepath.Join(dir, "b")}
			for i, p := range paths {
				if err := os.WriteFile(p, []byte("old "+string(rune('a'+i))), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var s Set
			a, err := s.Create(paths[0], 0o644)
			if err != nil {
				t.Fatal(err)
			}
			b, err := s.Create(paths[1], 0o644)
			if err != nil {
				t.Fatal(err)
			}
			err = tt.run(&s, a, b)
			s.Cleanup() // as deferred by a caller, also after Commit
			s.Cleanup()
			if (err != nil) != tt.wantErr {
				t.Errorf("error = %v, want error %v", err, tt.wantErr)
			}
			for i, p := range paths {
				if got, _ := os.ReadFile(p); string(got) != tt.want[i] {
					t.Errorf("%s = %q, want %q", filepath.Base(p), got, tt.want[i])
				}
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 2 {
				t.Errorf("temporary files left behind: %v", ents)
			}
			if err := s.Commit(); err == nil {
				t.Error("Commit after Cleanup = nil error, want an error")
			}
		})
	}
}
