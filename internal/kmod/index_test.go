package kmod

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func testIndex(t *testing.T) *Index {
	t.Helper()
	fsys := fstest.MapFS{
		DepFile: {Data: []byte(`kernel/a.ko: kernel/b.ko kernel/c.ko
kernel/b.ko: kernel/c.ko
kernel/c.ko:
kernel/d.ko: kernel/missing.ko
kernel/e.ko.xz:
kernel/f.ko:
kernel/g-h.ko:
kernel/s.ko:
`)},
		AliasFile: {Data: []byte(`alias e-alias e
alias pci:v00001AF4d* g-h
alias pci:v*d*sv*sd*bc01sc06i01* b
alias twice a
alias twice c
`)},
		SoftDepFile: {Data: []byte(`softdep a pre: e-alias
softdep a post: f
softdep e pre: builtin1 nothing
softdep f pre: a
softdep s pre: d c
`)},
		WeakDepFile:        {Data: []byte("weakdep a g-h nothing\n")},
		BuiltinFile:        {Data: []byte("kernel/x/builtin1.ko\n")},
		BuiltinModInfoFile: {Data: []byte("builtin1.alias=bi-alias\x00builtin2.license=GPL\x00")},
	}
	x, err := ReadIndexFS(fsys)
	if err != nil {
		t.Fatalf("ReadIndexFS: %v", err)
	}
	return x
}

func TestIndexLookups(t *testing.T) {
	x := testIndex(t)
	if got, want := x.Modules(), []string{"a", "b", "c", "d", "e", "f", "g_h", "s"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Modules() = %q, want %q", got, want)
	}
	if p, ok := x.Path("g-h"); !ok || p != "kernel/g-h.ko" {
		t.Errorf(`Path("g-h") = %q, %v, want "kernel/g-h.ko", true`, p, ok)
	}
	if p, ok := x.Path("e"); !ok || p != "kernel/e.ko.xz" {
		t.Errorf(`Path("e") = %q, %v, want "kernel/e.ko.xz", true`, p, ok)
	}
	if _, ok := x.Path("builtin1"); ok {
		t.Errorf(`Path("builtin1") found a path for a builtin`)
	}
	for n, want := range map[string]bool{"builtin1": true, "builtin2": true, "a": false, "bi-alias": false} {
		if got := x.Builtin(n); got != want {
			t.Errorf("Builtin(%q) = %v, want %v", n, got, want)
		}
	}
	if got, want := x.Deps("a"), []string{"b", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf(`Deps("a") = %q, want %q`, got, want)
	}
	pre, post := x.SoftDeps("a")
	if !reflect.DeepEqual(pre, []string{"e"}) || !reflect.DeepEqual(post, []string{"f"}) {
		t.Errorf(`SoftDeps("a") = %q, %q, want [e], [f]`, pre, post)
	}
	pre, post = x.SoftDepNames("a")
	if !reflect.DeepEqual(pre, []string{"e-alias"}) || !reflect.DeepEqual(post, []string{"f"}) {
		t.Errorf(`SoftDepNames("a") = %q, %q, want [e-alias], [f]`, pre, post)
	}
	if got := x.WeakDepNames("a"); !reflect.DeepEqual(got, []string{"g-h", "nothing"}) {
		t.Errorf(`WeakDepNames("a") = %q, want [g-h nothing]`, got)
	}
	if got := x.WeakDeps("a"); !reflect.DeepEqual(got, []string{"g_h"}) {
		t.Errorf(`WeakDeps("a") = %q, want [g_h]`, got)
	}

	lookups := []struct {
		name    string
		mods    []string
		builtin bool
	}{
		{"a", []string{"a"}, false},
		{"g-h", []string{"g_h"}, false},
		{"e-alias", []string{"e"}, false},
		{"twice", []string{"a", "c"}, false},
		{"builtin1", nil, true},
		{"bi-alias", nil, true},
		{"nothing", nil, false},
	}
	for _, tt := range lookups {
		mods, builtin := x.Lookup(tt.name)
		if !reflect.DeepEqual(mods, tt.mods) || builtin != tt.builtin {
			t.Errorf("Lookup(%q) = %q, %v, want %q, %v", tt.name, mods, builtin, tt.mods, tt.builtin)
		}
	}

	matches := []struct {
		modalias string
		want     []string
	}{
		{"pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", []string{"g_h"}},
		{"pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01", []string{"b"}},
		{"pci:v00001AF4d00002922sv00001AF4sd00001100bc01sc06i01", []string{"b", "g_h"}},
		{"virtio:d00000002v00001AF4", nil},
	}
	for _, tt := range matches {
		if got := x.Match(tt.modalias); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Match(%q) = %q, want %q", tt.modalias, got, tt.want)
		}
	}
}

func TestLoadOrder(t *testing.T) {
	x := testIndex(t)
	tests := []struct {
		names []string
		want  []string
	}{
		// e (pre of a), c and b (deps of a, b needs c), a, f (post of a,
		// whose own "pre: a" is already satisfied).
		{[]string{"a"}, []string{"e", "c", "b", "a", "f"}},
		{[]string{"b", "a"}, []string{"c", "b", "e", "a", "f"}},
		{[]string{"c", "c", "c"}, []string{"c"}},
		{[]string{"builtin1", "bi-alias", "g-h"}, []string{"g_h"}},
		// s's softdep d cannot be loaded (missing dependency): left out.
		{[]string{"s"}, []string{"c", "s"}},
		{[]string{"twice"}, []string{"e", "c", "b", "a", "f"}},
		{nil, []string{}},
	}
	for _, tt := range tests {
		got, err := x.LoadOrder(tt.names...)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("LoadOrder(%q) = %q, %v, want %q", tt.names, got, err, tt.want)
		}
	}
	for _, tt := range []struct{ name, mention string }{
		{"nope", "nope"},
		{"d", "missing"},
	} {
		_, err := x.LoadOrder("a", tt.name)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), tt.mention) {
			t.Errorf("LoadOrder(a, %q) error = %v, want fs.ErrNotExist naming %q", tt.name, err, tt.mention)
		}
	}
}

func TestLoadPlan(t *testing.T) {
	x := testIndex(t)
	got, err := x.LoadPlan("a")
	if err != nil {
		t.Fatal(err)
	}
	want := []Step{
		{Name: "e", Path: "kernel/e.ko.xz"},
		{Name: "c", Path: "kernel/c.ko"},
		{Name: "b", Path: "kernel/b.ko", After: []string{"c"}},
		{Name: "a", Path: "kernel/a.ko", After: []string{"b", "c", "e"}},
		{Name: "f", Path: "kernel/f.ko", After: []string{"a"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LoadPlan(a) = %+v, want %+v", got, want)
	}
}

func TestReadIndexMissing(t *testing.T) {
	_, err := ReadIndex(t.TempDir())
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), DepFile) {
		t.Errorf("ReadIndex(empty dir) = %v, want fs.ErrNotExist naming %s", err, DepFile)
	}
	_, err = ReadIndexFS(fstest.MapFS{DepFile: {Data: []byte("bad line\n")}})
	if err == nil {
		t.Errorf("ReadIndexFS(bad modules.dep) succeeded, want an error")
	}
}

func TestDepOrder(t *testing.T) {
	graph := func(g map[string][]string) func(string) []string {
		return func(m string) []string { return g[m] }
	}
	for _, tc := range []struct {
		name          string
		roots         []string
		before, after map[string][]string
		want          []string
	}{
		{"chain", []string{"a"}, map[string][]string{"a": {"b"}, "b": {"c"}}, nil, []string{"c", "b", "a"}},
		{"shared dependency once", []string{"a", "d"}, map[string][]string{"a": {"b", "c"}, "d": {"c"}}, nil, []string{"b", "c", "a", "d"}},
		{"after comes after", []string{"a"}, map[string][]string{"a": {"b"}}, map[string][]string{"a": {"p"}, "b": {"q"}}, []string{"b", "q", "a", "p"}},
		{"cycle cut where it closes", []string{"a"}, map[string][]string{"a": {"b"}, "b": {"a"}}, nil, []string{"b", "a"}},
		{"no roots", nil, nil, nil, nil},
	} {
		var after func(string) []string
		if tc.after != nil {
			after = graph(tc.after)
		}
		if got := DepOrder(tc.roots, graph(tc.before), after); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: DepOrder(%q) = %q, want %q", tc.name, tc.roots, got, tc.want)
		}
	}
}
