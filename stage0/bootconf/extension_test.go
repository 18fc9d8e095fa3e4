package bootconf

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestExtend(t *testing.T) {
	for _, tc := range []struct {
		name string
		base Config
		exts []Extension // merged in order, then applied
		want Config
	}{
		{"nothing", Config{ForceLoad: []string{"dm_crypt"}}, nil, Config{ForceLoad: []string{"dm_crypt"}}},
		{"one", Config{ForceLoad: []string{"dm_crypt"}},
			[]Extension{{Cmdline: []string{"rd.luks.key=/etc/keys/root.key"}, ForceLoad: []string{"snd_dummy", "dm_crypt"}}},
			Config{ForceLoad: []string{"dm_crypt", "snd_dummy"}, Cmdline: []string{"rd.luks.key=/etc/keys/root.key"}}},
		{"two: the later words come later and so win", Config{Cmdline: []string{"quiet"}},
			[]Extension{{Cmdline: []string{"root=/dev/a"}, ForceLoad: []string{"a"}}, {Cmdline: []string{"root=/dev/b"}, ForceLoad: []string{"a", "b"}}},
			Config{Cmdline: []string{"quiet", "root=/dev/a", "root=/dev/b"}, ForceLoad: []string{"a", "b"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e Extension
			for _, x := range tc.exts {
				e = e.Merge(x)
			}
			got := tc.base
			got.Extend(e)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Extend(%+v) = %+v, want %+v", e, got, tc.want)
			}
		})
	}
}

func TestExtensionRoundTrip(t *testing.T) {
	in := Extension{Cmdline: []string{"rd.luks.key=/k", `rootflags="a b"`}, ForceLoad: []string{"nbd"}}
	b, err := MarshalExtension(in, ExtensionsSince)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseExtension(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("ParseExtension(%s) = %v", b, err)
	}
	in.Version = ExtensionsSince
	if !reflect.DeepEqual(*got, in) {
		t.Errorf("ParseExtension(MarshalExtension(e)) = %+v, want %+v", *got, in)
	}
	if _, err := MarshalExtension(in, 1); err == nil {
		t.Errorf("MarshalExtension(e, 1) = nil error, want one: version 1 images read no extensions")
	}
}

func TestParseExtensionRejects(t *testing.T) {
	for _, in := range []string{
		"version = 99\n",
		"version = 1\n", // stage0 of version 1 reads no extension
		"cmdline = [\"quiet\"]\n",
		"version = 2\nroot = { device = \"/dev/sda\" }\n", // not an extension key
	} {
		if _, err := ParseExtension(strings.NewReader(in)); err == nil {
			t.Errorf("ParseExtension(%q) = nil error, want one", in)
		}
	}
}
