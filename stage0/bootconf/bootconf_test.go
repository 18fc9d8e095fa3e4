package bootconf

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	in := Config{
		KernelVersion: "6.1.0-26-amd64",
		ModulesDir:    "/usr/lib/modules/6.1.0-26-amd64",
		Root:          Root{Device: "UUID=1234", FSType: "ext4", Flags: "noatime"},
		ForceLoad:     []string{"dm_crypt"},
		Shell:         []string{"/usr/bin/busybox", "sh"},
		Fsck:          map[string]string{"ext4": "/usr/sbin/fsck.ext4"},
		Features:      []string{"luks"},
	}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Parse(%s) = %v", b, err)
	}
	in.Version = Version
	if !reflect.DeepEqual(*got, in) {
		t.Errorf("Parse(Marshal(c)) = %+v, want %+v", *got, in)
	}
	if !got.HasFeature("luks") || got.HasFeature("lvm") {
		t.Errorf("HasFeature wrong for %v", got.Features)
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{
		"version = 99\n",
		"kernel_version = \"x\"\n", // no version at all
		"version = 1\nbogus = 1\n",
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("Parse(%q) = nil error, want one", in)
		}
	}
}
