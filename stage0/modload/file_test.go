package modload

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/testdeb"
	"github.com/pkginitrd/pkginitrd/internal/testenv"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
	"golang.org/x/sys/unix"
)

// fakeKernel is a Machine's FinitModule and InitModule: it records calls
// and decompresses like a kernel built with CONFIG_MODULE_DECOMPRESS for method decomp (compress.None:
// without it, so the flag gives EOPNOTSUPP).
type fakeKernel struct {
	decomp compress.Format
	// failWith, when set, is what every load returns after the checks.
	failWith error

	mu     sync.Mutex
	calls  []string // "finit flags=N" or "init"
	images [][]byte // the module image each successful call received
}

func (k *fakeKernel) syscalls() machine.Machine {
	return machine.Machine{
		FinitModule: func(fd int, params string, flags int) error {
			k.mu.Lock()
			defer k.mu.Unlock()
			k.calls = append(k.calls, fmt.Sprintf("finit flags=%d", flags))
			data, err := readFD(fd)
			if err != nil {
				return err
			}
			if flags&^compressedFileFlag != 0 {
				return unix.EINVAL
			}
			if flags&compressedFileFlag != 0 {
				// kernel/module/decompress.c: only the built-in
				// method, recognised by its magic.
				switch c := compress.Detect(data); {
				case k.decomp == compress.None:
					return unix.EOPNOTSUPP
				case c != k.decomp:
					return unix.EINVAL
				}
				zr, _, err := compress.DetectReader(bytes.NewReader(data))
				if err != nil {
					return unix.EINVAL
				}
				var b bytes.Buffer
				if _, err := b.ReadFrom(zr); err != nil {
					return unix.EINVAL
				}
				data = b.Bytes()
			}
			return k.accept(data)
		},
		InitModule: func(image []byte, params string) error {
			k.mu.Lock()
			defer k.mu.Unlock()
			k.calls = append(k.calls, "init")
			return k.accept(image)
		},
	}
}

// accept checks that the image is an ELF file, as load_module does.
func (k *fakeKernel) accept(image []byte) error {
	if !bytes.HasPrefix(image, []byte("\x7fELF")) {
		return unix.ENOEXEC
	}
	if k.failWith != nil {
		return k.failWith
	}
	k.images = append(k.images, image)
	return nil
}

// readFD reads the whole file open at fd from offset 0, as the kernel does,
// without moving or closing it.
func readFD(fd int) ([]byte, error) {
	var out []byte
	buf := make([]byte, 1<<20)
	for off := int64(0); ; {
		n, err := unix.Pread(fd, buf, off)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
		off += int64(n)
	}
}

// realModules writes a real module of the Debian kernel as .ko, and
// compressed with the system's xz (as the kernel build does: crc32 check),
// zstd and gzip, into a directory; it returns the directory and the plain
// module's bytes.
func realModules(t *testing.T) (dir string, plain []byte) {
	t.Helper()
	root, kver := testdeb.Kernel(t)
	src := filepath.Join(root, "lib", "modules", kver, "kernel", "lib", "crc16.ko")
	plain, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "crc16.ko"), plain, 0o644); err != nil {
		t.Fatal(err)
	}
	for ext, argv := range map[string][]string{
		".xz":  {testenv.NeedTool(t, "xz", "xz-utils"), "--check=crc32", "--lzma2=dict=1MiB", "-c", src},
		".zst": {testenv.NeedTool(t, "zstd", "zstd"), "-q", "-c", src},
		".gz":  {testenv.NeedTool(t, "gzip", "gzip"), "-n", "-c", src},
	} {
		out, err := exec.Command(argv[0], argv[1:]...).Output()
		if err != nil {
			t.Fatalf("%s: %v (install the Debian packages xz-utils, zstd and gzip)", strings.Join(argv, " "), err)
		}
		if err := os.WriteFile(filepath.Join(dir, "crc16.ko"+ext), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, plain
}

// sysWith makes a sysfs root whose module/compression says method ("" = no file).
func sysWith(t *testing.T, method string) string {
	t.Helper()
	sys := t.TempDir()
	if method != "" {
		if err := os.MkdirAll(filepath.Join(sys, "module"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sys, "module", "compression"), []byte(method+"\n"), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	return sys
}

func TestFileLoader(t *testing.T) {
	dir, plain := realModules(t)
	tests := []struct {
		name   string
		kernel compress.Format // what the fake kernel decompresses
		sysfs  string          // module/compression
		files  []string        // loaded in this order
		calls  []string
	}{
		{"plain module: finit without flags", compress.XZ, "xz",
			[]string{"crc16.ko"}, []string{"finit flags=0"}},
		{"6.12 (xz built in): the kernel decompresses .ko.xz", compress.XZ, "xz",
			[]string{"crc16.ko.xz", "crc16.ko.xz"}, []string{"finit flags=4", "finit flags=4"}},
		{"xz kernel, zstd and gzip modules: decompressed here, no useless try", compress.XZ, "xz",
			[]string{"crc16.ko.zst", "crc16.ko.gz"}, []string{"init", "init"}},
		{"6.1 (no CONFIG_MODULE_DECOMPRESS, no sysfs file): one try, then here", compress.None, "",
			[]string{"crc16.ko.xz", "crc16.ko.xz", "crc16.ko.zst"}, []string{"finit flags=4", "init", "init", "finit flags=4", "init"}},
		{"sysfs says xz but the kernel refuses: EINVAL, remembered", compress.Zstd, "xz",
			[]string{"crc16.ko.xz", "crc16.ko.xz"}, []string{"finit flags=4", "init", "init"}},
		{"no sysfs file, kernel has zstd", compress.Zstd, "",
			[]string{"crc16.ko.zst", "crc16.ko.zst"}, []string{"finit flags=4", "finit flags=4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &fakeKernel{decomp: tt.kernel}
			l := NewFileLoader(k.syscalls(), sysWith(t, tt.sysfs))
			for _, f := range tt.files {
				if err := l.Load(filepath.Join(dir, f), "x=1"); err != nil {
					t.Fatalf("Load(%s) = %v", f, err)
				}
			}
			if fmt.Sprint(k.calls) != fmt.Sprint(tt.calls) {
				t.Errorf("Load(%q) made calls %q, want %q", tt.files, k.calls, tt.calls)
			}
			for i, img := range k.images {
				if !bytes.Equal(img, plain) {
					t.Errorf("Load(%q): image %d (%d bytes) differs from the plain module (%d bytes)", tt.files, i, len(img), len(plain))
				}
			}
			if len(k.images) != len(tt.files) {
				t.Errorf("Load(%q): kernel got %d images, want %d", tt.files, len(k.images), len(tt.files))
			}
		})
	}
}

func TestFileLoaderErrors(t *testing.T) {
	dir, _ := realModules(t)
	xz := filepath.Join(dir, "crc16.ko.xz")

	// A module the kernel rejects for another reason: the error names the
	// file, keeps the errno, and no fallback hides it.
	k := &fakeKernel{decomp: compress.XZ, failWith: unix.EEXIST}
	l := NewFileLoader(k.syscalls(), sysWith(t, "xz"))
	if err := l.Load(xz, ""); !isExist(err) || !strings.Contains(fmt.Sprint(err), xz) {
		t.Errorf("Load(already loaded .ko.xz) = %v, want EEXIST naming %s", err, xz)
	}
	if fmt.Sprint(k.calls) != "[finit flags=4]" {
		t.Errorf("Load(already loaded .ko.xz) calls = %q, want one finit", k.calls)
	}

	// A damaged xz file on a kernel that cannot decompress: our own
	// decompression fails with an error naming the file, and the method
	// is not marked refused on that evidence.
	bad := filepath.Join(dir, "bad.ko.xz")
	data, err := os.ReadFile(xz)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(bad, data, 0o644); err != nil {
		t.Fatal(err)
	}
	k = &fakeKernel{decomp: compress.None}
	l = NewFileLoader(k.syscalls(), sysWith(t, ""))
	if err := l.Load(bad, ""); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("Load(damaged .ko.xz) = %v, want an error naming %s", err, bad)
	}
	if _, known := l.InKernel(compress.XZ); known {
		t.Errorf("after a damaged module, InKernel(xz) is known; want it still unknown")
	}
	if err := l.Load(xz, ""); err != nil {
		t.Fatalf("Load(.ko.xz) = %v", err)
	}
	if ok, known := l.InKernel(compress.XZ); ok || !known {
		t.Errorf("InKernel(xz) = %v, %v after EOPNOTSUPP and a load here; want false, true", ok, known)
	}

	if err := l.Load(filepath.Join(dir, "missing.ko"), ""); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNotExist", err)
	}
	// Not a module: the kernel's ENOEXEC comes back.
	junk := filepath.Join(dir, "junk.ko")
	os.WriteFile(junk, []byte("hi"), 0o644)
	if err := l.Load(junk, ""); !errors.Is(err, unix.ENOEXEC) {
		t.Errorf("Load(junk) = %v, want ENOEXEC", err)
	}
}

// TestIsUnsupported checks which errnos send a module to stage0's own
// decompression.
func TestIsUnsupported(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{unix.EOPNOTSUPP, true},
		{fmt.Errorf("x: %w", unix.EINVAL), true},
		{unix.EEXIST, false},
		{unix.ENOEXEC, false},
	} {
		if got := isUnsupported(tc.err); got != tc.want {
			t.Errorf("IsUnsupported(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
