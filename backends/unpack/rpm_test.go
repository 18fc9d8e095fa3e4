package unpack

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/image/cpio"
	"github.com/pkginitrd/pkginitrd/internal/testrpm"
)

// TestUnpackRPM unpacks packages made by rpmbuild with each payload
// compression: modes (setuid too), symlinks, a hard-linked file, %config
// extracted, %ghost not.
func TestUnpackRPM(t *testing.T) {
	for _, payload := range []string{"w19.zstdio", "w9.gzdio", "w6.xzdio"} {
		t.Run(payload, func(t *testing.T) {
			rpm := testrpm.Build(t, testrpm.Spec{Name: "sample", Version: "1.2", Release: "3", Payload: payload, Files: []testrpm.File{
				{Path: "/usr/bin/tool", Mode: fs.ModeSetuid | 0o755, Data: []byte("#!/bin/sh\n")},
				{Path: "/usr/bin/tool-alias", HardLink: "/usr/bin/tool"},
				{Path: "/usr/lib64/libx.so.1", Link: "libx.so.1.0"},
				{Path: "/usr/lib64/libx.so.1.0", Mode: 0o755, Data: []byte("lib")},
				{Path: "/etc/sample.conf", Config: true, Data: []byte("a=1\n")},
				{Path: "/var/log/sample.log", Ghost: true, Data: []byte("log")},
				{Path: "/usr/share/sample", Dir: true},
			}})
			p, err := ReadRPM(rpm)
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != "sample" || p.EVR() != "1.2-3" || p.Arch != "x86_64" {
				t.Errorf("ReadRPM = %s %s %s", p.Name, p.EVR(), p.Arch)
			}
			dest := t.TempDir()
			if err := Unpack(context.Background(), rpm, dest, Limits{}); err != nil {
				t.Fatal(err)
			}
			got := describe(t, dest)
			hashOf := func(p string) string {
				if f := strings.Fields(got[p]); len(f) > 1 {
					return f[1]
				}
				return "?"
			}
			want := map[string]string{
				"usr/bin/tool":          "urwxr-xr-x " + hashOf("usr/bin/tool") + " links=usr/bin/tool,usr/bin/tool-alias",
				"usr/bin/tool-alias":    "urwxr-xr-x " + hashOf("usr/bin/tool") + " links=usr/bin/tool,usr/bin/tool-alias",
				"usr/lib64/libx.so.1":   "Lrwxrwxrwx -> libx.so.1.0",
				"usr/lib64/libx.so.1.0": "-rwxr-xr-x " + hashOf("usr/lib64/libx.so.1.0"),
				"etc/sample.conf":       "-rw-r--r-- " + hashOf("etc/sample.conf"),
				"usr/share/sample":      "drwxr-xr-x",
			}
			for _, d := range []string{"etc", "usr", "usr/bin", "usr/lib64", "usr/share"} {
				want[d] = "drwxr-xr-x"
			}
			compareTrees(t, payload, got, want)
			if _, ok := got["var/log/sample.log"]; ok {
				t.Errorf("%%ghost var/log/sample.log was extracted")
			}
		})
	}
}

// rpmTag is one header entry of a hand-made RPM.
type rpmTag struct {
	tag, typ, count uint32
	data            []byte
}

func strTag(tag uint32, s ...string) rpmTag {
	typ := uint32(rpmTypeStrArray)
	if len(s) == 1 && tag < 1027 || tag == tagPayloadComp || tag == tagPayloadFormat {
		typ = rpmTypeString
	}
	return rpmTag{tag, typ, uint32(len(s)), []byte(strings.Join(s, "\x00") + "\x00")}
}

func encodeHeader(tags []rpmTag) []byte {
	var index, store bytes.Buffer
	for _, tg := range tags {
		for _, v := range []uint32{tg.tag, tg.typ, uint32(store.Len()), tg.count} {
			_ = binary.Write(&index, binary.BigEndian, v)
		}
		store.Write(tg.data)
	}
	var h bytes.Buffer
	h.WriteString(rpmHeaderMagic)
	h.Write(make([]byte, 4))
	_ = binary.Write(&h, binary.BigEndian, uint32(len(tags)))
	_ = binary.Write(&h, binary.BigEndian, uint32(store.Len()))
	h.Write(index.Bytes())
	h.Write(store.Bytes())
	return h.Bytes()
}

// handMadeRPM writes name-1-1.x86_64.rpm with the given extra header tags
// and a gzip cpio payload of ents (data after each header).
func handMadeRPM(t *testing.T, name string, extra []rpmTag, ents []*cpio.Header, data []string) string {
	t.Helper()
	var out bytes.Buffer
	lead := make([]byte, rpmLeadSize)
	copy(lead, []byte{0xed, 0xab, 0xee, 0xdb})
	out.Write(lead)
	sig := encodeHeader(nil)
	out.Write(sig) // size 0: no padding
	tags := append([]rpmTag{strTag(tagName, name), strTag(tagVersion, "1"), strTag(tagRelease, "1"), strTag(tagArch, "x86_64"),
		strTag(tagPayloadFormat, "cpio"), strTag(tagPayloadComp, "gzip")}, extra...)
	out.Write(encodeHeader(tags))
	zw := gzip.NewWriter(&out)
	cw := cpio.NewWriter(zw)
	for i, h := range ents {
		if err := cw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := cw.Write([]byte(data[i])); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(cw.Close(), zw.Close()); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name+"-1-1.x86_64.rpm")
	if err := os.WriteFile(p, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUnpackRPMRefusesMalicious: entries leaving the root, absolute names,
// writes through a symlink and device nodes are refused with an error
// naming the package and the path; nothing is written outside the root.
func TestUnpackRPMRefusesMalicious(t *testing.T) {
	reg := func(name, data string) *cpio.Header {
		return &cpio.Header{Name: name, Mode: cpio.TypeReg | 0o644, Size: int64(len(data)), Nlink: 1}
	}
	tests := []struct {
		name string
		ents []*cpio.Header
		data []string
		path string
	}{
		{"dotdot", []*cpio.Header{reg("./../escaped", "x")}, []string{"x"}, "../escaped"},
		{"absolute", []*cpio.Header{reg("/escaped", "x")}, []string{"x"}, "/escaped"},
		{"symlink-escape", []*cpio.Header{
			{Name: "./usr/lib64", Mode: cpio.TypeSymlink | 0o777, Linkname: "../../.."},
			reg("./usr/lib64/escaped", "x")}, []string{"", "x"}, "usr/lib64/escaped"},
		{"device", []*cpio.Header{{Name: "./dev/sda", Mode: cpio.TypeBlock | 0o600, RdevMajor: 8}}, []string{""}, "./dev/sda"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rpm := handMadeRPM(t, "evil-"+tt.name, nil, tt.ents, tt.data)
			parent := t.TempDir()
			dest := filepath.Join(parent, "root")
			err := Unpack(context.Background(), rpm, dest, Limits{})
			if err == nil || !strings.Contains(err.Error(), "evil-"+tt.name) || !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("Unpack = %v, want an error naming the package and %s", err, tt.path)
			}
			if !errors.Is(err, ErrUnsafePath) {
				t.Errorf("Unpack = %v, want ErrUnsafePath", err)
			}
			ents, _ := os.ReadDir(parent)
			if len(ents) != 1 {
				t.Errorf("written outside the root: %v", ents)
			}
		})
	}
}

// TestUnpackRPMRefusesHugeFiles: a file of 4 GiB or more is refused by
// name before anything is written.
func TestUnpackRPMRefusesHugeFiles(t *testing.T) {
	size := make([]byte, 8)
	binary.BigEndian.PutUint64(size, 5<<30)
	extra := []rpmTag{
		strTag(tagBaseNames, "big.img"), strTag(tagDirNames, "/usr/share/"),
		{tagDirIndexes, rpmTypeInt32, 1, []byte{0, 0, 0, 0}},
		{tagLongFileSizes, rpmTypeInt64, 1, size},
		{tagFileModes, rpmTypeInt16, 1, []byte{0x81, 0xa4}},
		{tagFileFlags, rpmTypeInt32, 1, []byte{0, 0, 0, 0}},
	}
	rpm := handMadeRPM(t, "huge", extra, nil, nil)
	err := Unpack(context.Background(), rpm, t.TempDir(), Limits{})
	if err == nil || !strings.Contains(err.Error(), "/usr/share/big.img") || !strings.Contains(err.Error(), "4 GiB") {
		t.Errorf("Unpack = %v, want an error naming /usr/share/big.img and 4 GiB", err)
	}
}

// BenchmarkReadRPM reads the headers of an rpmbuild package with 200 files.
func BenchmarkReadRPM(b *testing.B) {
	var files []testrpm.File
	for i := range 200 {
		files = append(files, testrpm.File{Path: fmt.Sprintf("/usr/share/bench/file%03d", i), Data: []byte("x")})
	}
	rpm := testrpm.Build(b, testrpm.Spec{Name: "bench", Version: "1", Release: "1", Files: files})
	b.ResetTimer()
	for range b.N {
		if _, err := ReadRPM(rpm); err != nil {
			b.Fatal(err)
		}
	}
}
