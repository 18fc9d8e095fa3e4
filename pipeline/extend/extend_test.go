package extend

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/image"
	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/internal/kmod"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
)

const kver = "6.1.0-test"

// fakeKo returns a minimal relocatable ELF whose .modinfo holds fields
// ("name=a", "depends=b"): enough for kmod.ReadModInfo.
func fakeKo(t *testing.T, fields ...string) []byte {
	t.Helper()
	modinfo := []byte(strings.Join(fields, "\x00") + "\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	const hdr = 64
	shoff := uint64(hdr + len(modinfo) + len(shstr))
	var b bytes.Buffer
	h := elf.Header64{Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: 1, Shoff: shoff,
		Ehsize: hdr, Shentsize: 64, Shnum: 3, Shstrndx: 2}
	copy(h.Ident[:], []byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)})
	sections := []elf.Section64{{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Off: hdr, Size: uint64(len(modinfo)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: hdr + uint64(len(modinfo)), Size: uint64(len(shstr)), Addralign: 1}}
	for _, v := range []any{h, modinfo, shstr, sections} {
		if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func writeFile(t *testing.T, p string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
}

// hostModules makes a host module directory: a needs b, d needs c.
func hostModules(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "lib", "modules", kver)
	for name, deps := range map[string]string{"a": "b", "b": "", "c": "", "d": "c"} {
		writeFile(t, filepath.Join(dir, "kernel", name+".ko"), fakeKo(t, "name="+name, "depends="+deps, "alias=test:"+name+"*", "vermagic="+kver+" SMP"), 0o644)
	}
	writeFile(t, filepath.Join(dir, kmod.DepFile), []byte("kernel/a.ko: kernel/b.ko\nkernel/b.ko:\nkernel/c.ko:\nkernel/d.ko: kernel/c.ko\n"), 0o644)
	writeFile(t, filepath.Join(dir, kmod.AliasFile), []byte("alias test:a* a\nalias test:b* b\nalias test:c* c\nalias test:d* d\n"), 0o644)
	writeFile(t, filepath.Join(dir, kmod.BuiltinFile), []byte("kernel/e.ko\n"), 0o644)
	return dir
}

// baseImage writes a pkginitrd-like base image with module c, a lib →
// usr/lib symlink and a 0700 etc; version is its bootconf version.
func baseImage(t *testing.T, version int, comp compress.Format) string {
	t.Helper()
	tr := fstree.New()
	conf := "version = " + string(rune('0'+version)) + "\nkernel_version = \"" + kver + "\"\nmodules_dir = \"/usr/lib/modules/" + kver + "\"\ngeneric = true\n"
	md := "usr/lib/modules/" + kver + "/"
	for _, e := range []fstree.Entry{
		{Path: "etc", Kind: fstree.Dir, Mode: 0o700},
		{Path: bootconf.Path, Kind: fstree.File, Mode: 0o644, Data: []byte(conf)},
		{Path: "lib", Kind: fstree.Symlink, Target: "usr/lib"},
		{Path: md + "kernel/c.ko", Kind: fstree.File, Mode: 0o644, Data: []byte("c")},
		{Path: md + kmod.DepFile, Kind: fstree.File, Mode: 0o644, Data: []byte("kernel/c.ko:\n")},
		{Path: md + kmod.AliasFile, Kind: fstree.File, Mode: 0o644, Data: []byte("alias test:c* c\n")},
	} {
		e.Size = int64(len(e.Data))
		if err := tr.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "base.img")
	if _, err := image.Build(context.Background(), p, tr, image.Options{Compression: comp}); err != nil {
		t.Fatal(err)
	}
	return p
}

func readImage(t *testing.T, p string) (map[string]image.File, []image.Segment) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	files, segs, err := image.Files(context.Background(), f, st.Size(), func(string) bool { return true })
	if err != nil {
		t.Fatalf("image.Files(%s): %v", p, err)
	}
	return files, segs
}

func TestRun(t *testing.T) {
	base := baseImage(t, bootconf.Version, compress.Gzip)
	host := t.TempDir()
	key := filepath.Join(host, "root.key")
	writeFile(t, key, []byte("secret"), 0o600)
	crypttab := filepath.Join(host, "crypttab")
	writeFile(t, crypttab, []byte("root UUID=x /etc/keys/root.key luks\n"), 0o644)
	fw := filepath.Join(host, "fw.bin")
	writeFile(t, fw, []byte("fw"), 0o644)
	opts := Options{Base: base, Includes: []Include{{key, "/etc/keys/root.key"}, {fw, "/lib/firmware/fw.bin"}}, Crypttab: crypttab,
		Modules: []string{"a", "d"}, ModulesDir: hostModules(t), Cmdline: []string{"rd.luks.key=/etc/keys/root.key"}, Mtime: 1700000000}
	var outs [][]byte
	for i := range 2 {
		opts.Output = filepath.Join(t.TempDir(), "host.img")
		res, err := Run(context.Background(), opts)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if want := []string{"a", "b", "d"}; !slices.Equal(res.Modules, want) {
			t.Errorf("Run added modules %q, want %q", res.Modules, want)
		}
		out, _ := os.ReadFile(opts.Output)
		b, _ := os.ReadFile(base)
		if !bytes.HasPrefix(out, b) || res.BaseSize != int64(len(b)) {
			t.Fatalf("output (%d bytes) does not start with the base's %d bytes", len(out), len(b))
		}
		outs = append(outs, out)
		if i == 1 && !bytes.Equal(outs[0], outs[1]) {
			t.Errorf("two runs with the same inputs wrote different images")
		}
	}

	files, segs := readImage(t, opts.Output)
	md := "usr/lib/modules/" + kver + "/"
	last := segs[len(segs)-1]
	var added []string
	for _, h := range last.Entries {
		added = append(added, h.Name)
	}
	for _, want := range []string{"etc/keys/root.key", "etc/crypttab", "usr/lib/firmware/fw.bin", bootconf.ExtensionPath, md + "kernel/a.ko", md + "kernel/b.ko", md + "kernel/d.ko", md + kmod.DepFile} {
		if !slices.Contains(added, want) {
			t.Errorf("added segment lacks %s: %q", want, added)
		}
	}
	for _, unwanted := range []string{md + "kernel/c.ko", "lib/modules/" + kver + "/kernel/a.ko", "lib"} {
		if slices.Contains(added, unwanted) {
			t.Errorf("added segment has %s (the base has it, or it is behind the base's lib symlink)", unwanted)
		}
	}
	if etc := files["etc"]; etc.Header().FileMode().Perm() != 0o700 {
		t.Errorf("etc mode after the addition = %v, want the base's 0700", etc.Header().FileMode())
	}
	if got := string(files["etc/keys/root.key"].Data); got != "secret" {
		t.Errorf("key = %q", got)
	}
	wantDep := "kernel/c.ko:\nkernel/a.ko: kernel/b.ko\nkernel/b.ko:\nkernel/d.ko: kernel/c.ko\n"
	if got := string(files[md+kmod.DepFile].Data); got != wantDep {
		t.Errorf("modules.dep = %q, want the union %q", got, wantDep)
	}
	for _, a := range []string{"alias test:c* c", "alias test:a* a", "alias test:d* d"} {
		if !strings.Contains(string(files[md+kmod.AliasFile].Data), a) {
			t.Errorf("modules.alias lacks %q:\n%s", a, files[md+kmod.AliasFile].Data)
		}
	}
	ext, err := bootconf.ParseExtension(bytes.NewReader(files[bootconf.ExtensionPath].Data))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ext.Cmdline, opts.Cmdline) || !slices.Equal(ext.ForceLoad, []string{"a", "d"}) {
		t.Errorf("extension = %+v, want cmdline %q and force_load [a d]", ext, opts.Cmdline)
	}

	// Extending the extended image merges the extension configuration.
	again := Options{Base: opts.Output, Output: filepath.Join(t.TempDir(), "again.img"), Cmdline: []string{"rd.debug"}}
	if _, err := Run(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	files, _ = readImage(t, again.Output)
	ext, err = bootconf.ParseExtension(bytes.NewReader(files[bootconf.ExtensionPath].Data))
	if err != nil || !slices.Equal(ext.Cmdline, []string{opts.Cmdline[0], "rd.debug"}) || len(ext.ForceLoad) != 2 {
		t.Errorf("second extension = %+v, %v; want both command lines and the first's force_load", ext, err)
	}
}

func TestRunErrors(t *testing.T) {
	host := hostModules(t)
	for _, tc := range []struct {
		name    string
		base    func(t *testing.T) string
		opts    Options
		wantErr string
	}{
		{"unknown module", func(t *testing.T) string { return baseImage(t, bootconf.Version, compress.Zstd) },
			Options{Modules: []string{"nosuchmod"}, ModulesDir: host}, "nosuchmod"},
		{"old stage0", func(t *testing.T) string { return baseImage(t, 1, compress.Zstd) },
			Options{Cmdline: []string{"quiet"}}, "reads no extension"},
		{"dashes", func(t *testing.T) string { return baseImage(t, bootconf.Version, compress.Zstd) },
			Options{Cmdline: []string{"quiet -- single"}}, `"--"`},
		{"lz4 base", func(t *testing.T) string { return baseImage(t, bootconf.Version, compress.LZ4) },
			Options{Cmdline: []string{"quiet"}}, "last segment is lz4"},
		{"nothing", func(t *testing.T) string { return baseImage(t, bootconf.Version, compress.Zstd) },
			Options{}, "nothing to add"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Base = tc.base(t)
			tc.opts.Output = filepath.Join(t.TempDir(), "out.img")
			_, err := Run(context.Background(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Run = %v, want an error with %q", err, tc.wantErr)
			}
			if _, serr := os.Stat(tc.opts.Output); serr == nil {
				t.Errorf("a failed Run left %s", tc.opts.Output)
			}
		})
	}
}
