package backends

import (
	"reflect"
	"testing"
)

func TestFilter(t *testing.T) {
	in := []Package{
		{Name: "perl-base", Version: "5.36"},
		{Name: "libc6", Version: "2.36", Arch: "i386"},
		{Name: "busybox", Version: "1.35"},
		{Name: "libc6", Version: "2.36", Arch: "amd64"},
		{Name: "debconf", Version: "1.5"},
	}
	got := Filter(in, []string{"debconf", "perl-base", "not-there"})
	want := []Package{
		{Name: "busybox", Version: "1.35"},
		{Name: "libc6", Version: "2.36", Arch: "amd64"},
		{Name: "libc6", Version: "2.36", Arch: "i386"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Filter = %+v, want %+v", got, want)
	}
	if in[0].Name != "perl-base" {
		t.Errorf("Filter modified its input: %+v", in)
	}
	if got := Filter(nil, nil); got == nil || len(got) != 0 {
		t.Errorf("Filter(nil) = %#v, want an empty non-nil slice", got)
	}
}
