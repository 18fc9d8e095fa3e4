package pipeline

import (
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

func TestFixupsArch(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  map[string]string // link → target ("" = absent)
	}{
		{"loader in usr/lib", []string{"usr/lib/ld-linux-x86-64.so.2", "usr/lib/libc.so.6"},
			map[string]string{"usr/lib64/ld-linux-x86-64.so.2": "../lib/ld-linux-x86-64.so.2", "usr/lib64/libc.so.6": ""}},
		{"loader already in usr/lib64", []string{"usr/lib/ld-linux-x86-64.so.2", "usr/lib64/ld-linux-x86-64.so.2"},
			map[string]string{"usr/lib64/ld-linux-x86-64.so.2": ""}},
		{"no loader", []string{"usr/bin/busybox"}, map[string]string{"usr/lib64/ld-linux-x86-64.so.2": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := fstree.New()
			if err := addSkeleton(tr, "rolling"); err != nil {
				t.Fatal(err)
			}
			for _, f := range tt.files {
				if err := tr.Add(fstree.Entry{Path: f, Kind: fstree.File, Mode: 0o755, Data: []byte("x"), Size: 1}); err != nil {
					t.Fatal(err)
				}
			}
			if err := fixupsArch(tr); err != nil {
				t.Fatal(err)
			}
			for link, target := range tt.want {
				e := tr.Get(link)
				switch {
				case target == "" && e != nil && e.Kind == fstree.Symlink:
					t.Errorf("%s: unexpected link to %s", link, e.Target)
				case target != "" && (e == nil || e.Kind != fstree.Symlink || e.Target != target):
					t.Errorf("%s = %+v, want a link to %s", link, e, target)
				}
			}
		})
	}
}
