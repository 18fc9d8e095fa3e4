package uki

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

// debianStub is systemd-stub as Debian's systemd-boot-efi ships it.
const debianStub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

// fakeStub is a minimal PE32+ EFI application shaped like systemd-stub
// 252: SectionAlignment = FileAlignment = 0x200, a .text and an .sbat
// section, and behind them a certificate table the writer must drop.
func fakeStub(t *testing.T) []byte {
	t.Helper()
	const peAt, sizeOfHeaders, align = 0x40, 0x400, 0x200
	b := make([]byte, sizeOfHeaders+2*align)
	le := binary.LittleEndian
	copy(b, "MZ")
	le.PutUint32(b[peOffsetField:], peAt)
	copy(b[peAt:], "PE\x00\x00")
	coff := peAt + 4
	le.PutUint16(b[coff:], pe.IMAGE_FILE_MACHINE_AMD64)
	le.PutUint16(b[coff+2:], 2)
	le.PutUint16(b[coff+16:], 240)
	le.PutUint16(b[coff+18:], 0x206)
	opt := coff + coffSize
	le.PutUint16(b[opt:], 0x20b)
	le.PutUint32(b[opt+16:], 0x1000) // entry point
	le.PutUint32(b[opt+32:], align)
	le.PutUint32(b[opt+36:], align)
	le.PutUint32(b[opt+56:], 0x2200) // SizeOfImage
	le.PutUint32(b[opt+60:], sizeOfHeaders)
	le.PutUint16(b[opt+68:], pe.IMAGE_SUBSYSTEM_EFI_APPLICATION)
	le.PutUint32(b[opt+108:], 16)
	le.PutUint32(b[opt+112+8*dirSecurity:], uint32(len(b))) // certificate table behind the sections
	le.PutUint32(b[opt+112+8*dirSecurity+4:], 8)
	table := opt + 240
	for i, s := range []struct {
		name  string
		va    uint32
		flags uint32
	}{{".text", 0x1000, pe.IMAGE_SCN_CNT_CODE | pe.IMAGE_SCN_MEM_EXECUTE | pe.IMAGE_SCN_MEM_READ}, {".sbat", 0x2000, dataSection}} {
		h := b[table+sectionHdrSize*i:]
		copy(h, s.name)
		le.PutUint32(h[8:], 0x100)
		le.PutUint32(h[12:], s.va)
		le.PutUint32(h[16:], align)
		le.PutUint32(h[20:], uint32(sizeOfHeaders+align*i))
		le.PutUint32(h[36:], s.flags)
		copy(b[sizeOfHeaders+align*i:], strings.Repeat(s.name, 10))
	}
	return append(b, "CERTDATA"...)
}

func stubs(t *testing.T) map[string][]byte {
	m := map[string][]byte{"fake": fakeStub(t)}
	if b, err := os.ReadFile(debianStub); err == nil {
		m["debian"] = b
	} else {
		t.Logf("%s: %v (apt-get install systemd-boot-efi to test against it)", debianStub, err)
	}
	return m
}

func testSections() []Section {
	return []Section{
		Bytes(OSRel, []byte("ID=debian\nVERSION_ID=\"12\"\n")),
		Bytes(Cmdline, []byte("console=ttyS0 panic=-1")),
		Bytes(Uname, []byte("6.1.0-26-amd64")),
		Bytes(Initrd, bytes.Repeat([]byte("initrd"), 5000)),
		Bytes(Linux, bytes.Repeat([]byte{0x4d, 0x5a, 1, 2, 3}, 7777)),
	}
}

func write(t *testing.T, stub []byte, secs []Section) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := Write(&buf, stub, secs)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("Write returned %d, wrote %d bytes", n, buf.Len())
	}
	return buf.Bytes()
}

// TestWrite re-reads the UKI with debug/pe: the stub's sections are
// untouched, the new ones follow them aligned, and the headers agree.
func TestWrite(t *testing.T) {
	for name, stub := range stubs(t) {
		t.Run(name, func(t *testing.T) {
			secs := testSections()
			out := write(t, stub, secs)
			orig, err := pe.NewFile(bytes.NewReader(stub))
			if err != nil {
				t.Fatal(err)
			}
			f, err := pe.NewFile(bytes.NewReader(out))
			if err != nil {
				t.Fatalf("re-read UKI: %v", err)
			}
			oh := f.OptionalHeader.(*pe.OptionalHeader64)
			ooh := orig.OptionalHeader.(*pe.OptionalHeader64)
			if got, want := int(f.NumberOfSections), len(orig.Sections)+len(secs); got != want {
				t.Fatalf("NumberOfSections = %d, want %d", got, want)
			}
			for i, s := range orig.Sections {
				if f.Sections[i].SectionHeader != s.SectionHeader {
					t.Errorf("stub section %s changed: %+v, was %+v", s.Name, f.Sections[i].SectionHeader, s.SectionHeader)
				}
			}
			valign := max(ooh.SectionAlignment, minAlign)
			prevEnd := ooh.SizeOfImage
			for i, want := range secs {
				s := f.Sections[len(orig.Sections)+i]
				if s.Name != want.Name || s.Characteristics != dataSection {
					t.Errorf("section %d = %s %#x, want %s %#x", i, s.Name, s.Characteristics, want.Name, dataSection)
				}
				if s.VirtualAddress%valign != 0 || s.VirtualAddress < prevEnd {
					t.Errorf("%s at VA %#x: want aligned to %#x and after %#x", s.Name, s.VirtualAddress, valign, prevEnd)
				}
				if s.Offset%oh.FileAlignment != 0 || s.Size%oh.FileAlignment != 0 {
					t.Errorf("%s at file offset %#x, raw size %#x: not aligned to %#x", s.Name, s.Offset, s.Size, oh.FileAlignment)
				}
				data, err := s.Data()
				if err != nil {
					t.Fatal(err)
				}
				wantData := make([]byte, want.Size)
				if _, err := want.Data.ReadAt(wantData, 0); err != nil {
					t.Fatal(err)
				}
				if int64(s.VirtualSize) != want.Size || !bytes.Equal(data[:s.VirtualSize], wantData) || len(bytes.Trim(data[s.VirtualSize:], "\x00")) != 0 {
					t.Errorf("%s: contents differ (virtual size %d, want %d)", s.Name, s.VirtualSize, want.Size)
				}
				prevEnd = s.VirtualAddress + s.VirtualSize
			}
			last := f.Sections[len(f.Sections)-1]
			if want := uint32(alignUp(int64(last.VirtualAddress+last.VirtualSize), int64(oh.SectionAlignment))); oh.SizeOfImage != want {
				t.Errorf("SizeOfImage = %#x, want %#x", oh.SizeOfImage, want)
			}
			if want := int(last.Offset + last.Size); len(out) != want {
				t.Errorf("file is %d bytes, want %d (end of the last section)", len(out), want)
			}
			if d := oh.DataDirectory[dirSecurity]; d.VirtualAddress != 0 || d.Size != 0 {
				t.Errorf("certificate table directory = %+v, want empty", d)
			}
			if got, want := oh.CheckSum, recomputed(t, out); got != want {
				t.Errorf("CheckSum = %#x, recomputed %#x", got, want)
			}
			if !bytes.Equal(write(t, stub, testSections()), out) {
				t.Error("a second write gave different bytes")
			}
		})
	}
}

// recomputed is the checksum of a PE file with its checksum field zeroed.
func recomputed(t *testing.T, file []byte) uint32 {
	t.Helper()
	b := bytes.Clone(file)
	s, err := readStubHeaders(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b[s+64 : s+68])
	var c checksum
	c.Write(b[:7]) // an odd split must not change the sum
	c.Write(b[7:])
	return c.value()
}

func readStubHeaders(b []byte) (optAt int, err error) {
	if len(b) < peOffsetField+4 {
		return 0, errors.New("short file")
	}
	return int(binary.LittleEndian.Uint32(b[peOffsetField:])) + 4 + coffSize, nil
}

// TestChecksumOfDebianStub checks the checksum against the one the
// stub's own build wrote.
func TestChecksumOfDebianStub(t *testing.T) {
	stub, err := os.ReadFile(debianStub)
	if err != nil {
		testenv.Missing(t, "%v: apt-get install systemd-boot-efi", err)
	}
	f, err := pe.NewFile(bytes.NewReader(stub))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := recomputed(t, stub), f.OptionalHeader.(*pe.OptionalHeader64).CheckSum; got != want {
		t.Errorf("checksum = %#x, the stub says %#x", got, want)
	}
}

// TestObjcopyReadsSections checks the sections with binutils' reader.
func TestObjcopyReadsSections(t *testing.T) {
	objcopy := testenv.NeedTool(t, "objcopy", "binutils")
	dir := t.TempDir()
	uki := filepath.Join(dir, "uki.efi")
	if err := os.WriteFile(uki, write(t, fakeStub(t), testSections()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, s := range testSections() {
		dump := filepath.Join(dir, s.Name)
		if out, err := exec.Command(objcopy, "--dump-section", s.Name+"="+dump, uki, filepath.Join(dir, "copy.efi")).CombinedOutput(); err != nil {
			t.Fatalf("objcopy --dump-section %s: %v\n%s", s.Name, err, out)
		}
		got, err := os.ReadFile(dump)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, s.Size)
		s.Data.ReadAt(want, 0)
		if !bytes.Equal(got, want) {
			t.Errorf("objcopy dumps %s as %d bytes, want the %d written", s.Name, len(got), len(want))
		}
	}
}

func TestWriteErrors(t *testing.T) {
	stub := fakeStub(t)
	withLinux, err := func() ([]byte, error) {
		var b bytes.Buffer
		_, err := Write(&b, stub, []Section{Bytes(Linux, []byte("k"))})
		return b.Bytes(), err
	}()
	if err != nil {
		t.Fatal(err)
	}
	many := make([]Section, 20)
	for i := range many {
		many[i] = Bytes(".s"+string(rune('a'+i)), nil)
	}
	for _, tc := range []struct {
		name string
		stub []byte
		secs []Section
		want error
	}{
		{"not a PE", []byte("MZ not really"), testSections(), ErrNotStub},
		{"already a UKI", withLinux, testSections(), ErrNotStub},
		{"long name", stub, []Section{Bytes(".toolongname", nil)}, ErrSectionName},
		{"stub's own section", stub, []Section{Bytes(".sbat", nil)}, ErrSectionTwice},
		{"twice", stub, []Section{Bytes(Linux, nil), Bytes(Linux, nil)}, ErrSectionTwice},
		{"no header room", stub, many, ErrHeaderRoom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Write(&bytes.Buffer{}, tc.stub, tc.secs)
			if !errors.Is(err, tc.want) {
				t.Errorf("Write: %v, want %v", err, tc.want)
			}
		})
	}
}
