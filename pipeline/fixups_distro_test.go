package pipeline

import (
	"testing"

	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

func TestDistributionFixups(t *testing.T) {
	tests := []struct {
		distro string
		before []fstree.Entry
		want   map[string]string // path → symlink target or file contents
		absent []string
	}{
		{"fedora", []fstree.Entry{{Path: "usr/bin/busybox", Kind: fstree.File, Mode: 0o755}},
			map[string]string{"var/run": "../run", "var/lock": "../run/lock", "usr/sbin/busybox": "../bin/busybox",
				"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "etc/group": "root:x:0:\n"}, nil},
		{"fedora", []fstree.Entry{{Path: "usr/sbin/busybox", Kind: fstree.File, Mode: 0o755, Data: []byte("bb"), Size: 2},
			{Path: "etc/passwd", Kind: fstree.File, Mode: 0o644, Data: []byte("mine\n"), Size: 5}},
			map[string]string{"usr/sbin/busybox": "bb", "etc/passwd": "mine\n"}, nil},
		{"debian", nil, nil, []string{"etc/passwd", "var/run"}},
		{"unknown", nil, nil, []string{"etc/passwd", "var/run"}},
	}
	for _, tt := range tests {
		t.Run(tt.distro, func(t *testing.T) {
			tree := fstree.New()
			if err := addSkeleton(tree, "x"); err != nil {
				t.Fatal(err)
			}
			for _, e := range tt.before {
				if err := tree.Add(e); err != nil {
					t.Fatal(err)
				}
			}
			if err := fixups(tree, tt.distro, confd.Distribution{}); err != nil {
				t.Fatal(err)
			}
			for p, want := range tt.want {
				e := tree.Get(p)
				switch {
				case e == nil:
					t.Errorf("%s missing", p)
				case e.Kind == fstree.Symlink && e.Target != want:
					t.Errorf("%s -> %s, want %s", p, e.Target, want)
				case e.Kind == fstree.File && string(e.Data) != want:
					t.Errorf("%s = %q, want %q", p, e.Data, want)
				}
			}
			for _, p := range tt.absent {
				if tree.Get(p) != nil {
					t.Errorf("%s added for %s", p, tt.distro)
				}
			}
		})
	}
}
