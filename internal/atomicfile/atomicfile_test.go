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
