package cli

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestSelectionGeneric(t *testing.T) {
	dir := t.TempDir()
	on := filepath.Join(dir, "generic.toml")
	if err := os.WriteFile(on, []byte("generic = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want bool
	}{
		{"default is host-only", nil, false},
		{"flag", []string{"--generic"}, true},
		{"config", []string{"--config", on}, true},
		{"flag overrides config", []string{"--config", on, "--generic=false"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s selection
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			s.register(fs)
			if err := fs.Parse(append([]string{"--cache-dir", t.TempDir()}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			opts, err := s.options(Env{Getenv: func(string) string { return "" }}, fs)
			if err != nil {
				t.Fatal(err)
			}
			if opts.Generic != tc.want {
				t.Errorf("options(%q).Generic = %v, want %v", tc.args, opts.Generic, tc.want)
			}
		})
	}
}
