package kmod

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestParseDep(t *testing.T) {
	in := `kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/lib/crc16.ko:

# comment
kernel/fs/ext4/ext4.ko.xz:   kernel/lib/crc16.ko kernel/fs/mbcache.ko	kernel/fs/jbd2/jbd2.ko
`
	want := []Dep{
		{Path: "kernel/drivers/block/virtio_blk.ko", Deps: []string{"kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko"}},
		{Path: "kernel/lib/crc16.ko", Deps: nil},
		{Path: "kernel/fs/ext4/ext4.ko.xz", Deps: []string{"kernel/lib/crc16.ko", "kernel/fs/mbcache.ko", "kernel/fs/jbd2/jbd2.ko"}},
	}
	got, err := ParseDep(strings.NewReader(in))
	if err != nil {
		t.Fatalf("ParseDep: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseDep = %q, want %q", got, want)
	}
	var buf bytes.Buffer
	if err := WriteDep(&buf, got); err != nil {
		t.Fatal(err)
	}
	again, err := ParseDep(&buf)
	if err != nil || !reflect.DeepEqual(again, want) {
		t.Errorf("ParseDep(WriteDep(x)) = %q, %v, want %q", again, err, want)
	}
	for _, bad := range []string{"no colon here\n", ": a.ko\n"} {
		if _, err := ParseDep(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "modules.dep line 1") {
			t.Errorf("ParseDep(%q) error = %v, want one naming modules.dep line 1", bad, err)
		}
	}
}

func TestParseAlias(t *testing.T) {
	in := `# Aliases extracted from modules themselves.
alias pci:v00001AF4d00001001sv*sd*bc*sc*i* virtio_pci
alias fs-ext4 ext4
alias crypto-crc32c crc32c-intel
options foo bar=1
`
	want := []Alias{
		{"pci:v00001AF4d00001001sv*sd*bc*sc*i*", "virtio_pci"},
		{"fs-ext4", "ext4"},
		{"crypto-crc32c", "crc32c_intel"},
	}
	got, err := ParseAlias(strings.NewReader(in))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseAlias = %q, %v, want %q", got, err, want)
	}
	var buf bytes.Buffer
	WriteAlias(&buf, got)
	if again, err := ParseAlias(&buf); err != nil || !reflect.DeepEqual(again, want) {
		t.Errorf("ParseAlias(WriteAlias(x)) = %q, %v, want %q", again, err, want)
	}
	if _, err := ParseAlias(strings.NewReader("alias onlypattern\n")); err == nil {
		t.Errorf("ParseAlias(alias without module) succeeded, want an error")
	}
}

func TestParseSoftDep(t *testing.T) {
	in := `# Soft dependencies extracted from modules themselves.
softdep ext4 pre: crypto-crc32c
softdep cifs gcm
softdep ipmi_msghandler post: ipmi_devintf
softdep pcengines-apuv2 pre: platform:gpio_amd_fch platform:leds-gpio post: x
`
	want := []SoftDep{
		{Module: "ext4", Pre: []string{"crypto-crc32c"}},
		{Module: "cifs"},
		{Module: "ipmi_msghandler", Post: []string{"ipmi_devintf"}},
		{Module: "pcengines_apuv2", Pre: []string{"platform:gpio_amd_fch", "platform:leds-gpio"}, Post: []string{"x"}},
	}
	got, err := ParseSoftDep(strings.NewReader(in))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseSoftDep = %q, %v, want %q", got, err, want)
	}
	var buf bytes.Buffer
	WriteSoftDep(&buf, got)
	if strings.Contains(buf.String(), "cifs") {
		t.Errorf("WriteSoftDep wrote a line without names:\n%s", buf.String())
	}
	again, err := ParseSoftDep(&buf)
	if err != nil || !reflect.DeepEqual(again, append(want[:1:1], want[2:]...)) {
		t.Errorf("ParseSoftDep(WriteSoftDep(x)) = %q, %v", again, err)
	}
}

func TestParseWeakDep(t *testing.T) {
	in := "weakdep a-b c\nweakdep a-b d e\n"
	want := []WeakDep{{Module: "a_b", Deps: []string{"c"}}, {Module: "a_b", Deps: []string{"d", "e"}}}
	got, err := ParseWeakDep(strings.NewReader(in))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseWeakDep = %q, %v, want %q", got, err, want)
	}
	var buf bytes.Buffer
	WriteWeakDep(&buf, got)
	again, err := ParseWeakDep(&buf)
	wantAgain := []WeakDep{{"a_b", []string{"c"}}, {"a_b", []string{"d"}}, {"a_b", []string{"e"}}}
	if err != nil || !reflect.DeepEqual(again, wantAgain) {
		t.Errorf("ParseWeakDep(WriteWeakDep(x)) = %q, %v, want %q", again, err, wantAgain)
	}
}

func TestList(t *testing.T) {
	want := []string{"kernel/arch/x86/events/amd/amd-uncore.ko", "kernel/fs/ext4/ext4.ko"}
	var buf bytes.Buffer
	WriteList(&buf, want)
	if buf.String() != "kernel/arch/x86/events/amd/amd-uncore.ko\nkernel/fs/ext4/ext4.ko\n" {
		t.Errorf("WriteList = %q", buf.String())
	}
	got, err := ParseList(&buf)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseList(WriteList(x)) = %q, %v, want %q", got, err, want)
	}
}

func TestBuiltinModInfo(t *testing.T) {
	in := "amd_uncore.license=GPL v2\x00amd_uncore.file=arch/x86/events/amd/amd-uncore\x00" +
		"crypto_algapi.softdep=pre: cryptomgr\x00dh_generic.alias=crypto-dh\x00dh_generic.alias=dh\x00" +
		"bad-record\x00.x=y\x00m.=z\x00mmiotrace.parm=trace_pc:Record address of faulting instructions.\x00"
	want := []Field{
		{"amd_uncore", "license", "GPL v2"},
		{"amd_uncore", "file", "arch/x86/events/amd/amd-uncore"},
		{"crypto_algapi", "softdep", "pre: cryptomgr"},
		{"dh_generic", "alias", "crypto-dh"},
		{"dh_generic", "alias", "dh"},
		{"mmiotrace", "parm", "trace_pc:Record address of faulting instructions."},
	}
	got := ParseBuiltinModInfo([]byte(in))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseBuiltinModInfo = %q, want %q", got, want)
	}
	var buf bytes.Buffer
	WriteBuiltinModInfo(&buf, got)
	if again := ParseBuiltinModInfo(buf.Bytes()); !reflect.DeepEqual(again, want) {
		t.Errorf("ParseBuiltinModInfo(WriteBuiltinModInfo(x)) = %q, want %q", again, want)
	}
	infos := BuiltinInfos(got)
	if mi := infos["dh_generic"]; !reflect.DeepEqual(mi.Aliases, []string{"crypto-dh", "dh"}) {
		t.Errorf("BuiltinInfos[dh_generic].Aliases = %q", mi.Aliases)
	}
	if mi := infos["crypto_algapi"]; !reflect.DeepEqual(mi.SoftPre, []string{"cryptomgr"}) {
		t.Errorf("BuiltinInfos[crypto_algapi].SoftPre = %q", mi.SoftPre)
	}
	if len(infos) != 4 {
		t.Errorf("BuiltinInfos has %d modules, want 4", len(infos))
	}
}
