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
		{"second target became a directory", func(s *Set, a, b *File) error {
			io.WriteString(a, "new a")
			io.WriteString(b, "new b")
			os.Remove(b.path)
			if err := os.Mkdir(b.path, 0o755); err != nil {
				return err
			}
			return s.Commit()
		}, true, [2]string{"old a", ""}},
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

func TestCheckTarget(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want string // "" = no error
	}{
		{filepath.Join(dir, "new"), ""},
		{file, ""},
		{dir, dir + ": is a directory"},
		{filepath.Join(dir, "missing", "out"), "directory " + filepath.Join(dir, "missing") + " does not exist"},
		{filepath.Join(file, "out"), file + " is not a directory"},
	}
	for _, tt := range tests {
		err := CheckTarget(tt.path)
		if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CheckTarget(%s) = %v, want %q", tt.path, err, tt.want)
		}
	}
}

// TestLockDir checks that stale temporaries are removed only when no other
// run holds the directory, and only those of the names asked for.
func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	names := []string{".img.tmp-123", ".img.tmp-abc", ".img.tmp-", ".other.tmp-5", "img", ".img.lock", "x.tmp-1"}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	isImg := func(name string) bool { return name == "img" }
	other, removed, err := LockDir(dir, func(string) bool { return false })
	if err != nil || len(removed) != 0 {
		t.Fatalf("LockDir(first) = %v, %v", removed, err)
	}
	l, removed, err := LockDir(dir, isImg)
	if err != nil || len(removed) != 0 {
		t.Errorf("LockDir while another run holds it = %v, %v; want nothing removed", removed, err)
	}
	l.Unlock()
	other.Unlock()
	l, removed, err = LockDir(dir, isImg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if want := filepath.Join(dir, ".img.tmp-123"); len(removed) != 1 || removed[0] != want {
		t.Errorf("LockDir = %v, want [%s] removed", removed, want)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != len(names)-1 {
		t.Errorf("directory holds %v, want all but the stale temporary", ents)
	}
}
