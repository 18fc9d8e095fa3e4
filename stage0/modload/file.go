package modload

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/kmod"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
)

// compressedFileFlag is finit_module's MODULE_INIT_COMPRESSED_FILE (Linux
// ≥ 5.17, include/uapi/linux/module.h): the kernel decompresses the file.
const compressedFileFlag = 4

// FileLoader loads module files, plain (.ko) or compressed (.ko.xz,
// .ko.zst, .ko.gz, told apart by their magic), the way kmod ≥ 31 does: a
// compressed file goes to finit_module with MODULE_INIT_COMPRESSED_FILE when
// the kernel decompresses that method itself (sysRoot/module/compression
// names it; with no such file, one try tells), else it is decompressed here
// and passed to init_module. The first refusal per method is remembered, so
// each module costs one system call. A FileLoader is safe for concurrent use.
type FileLoader struct {
	sys     machine.Machine
	sysRoot string

	mu       sync.Mutex
	read     bool                     // sysRoot/module/compression read
	kernel   compress.Format          // what it names; None: absent or unknown
	inKernel map[compress.Format]bool // false once the kernel refused the method
}

// NewFileLoader returns a FileLoader calling sys's FinitModule and
// InitModule, with sysfs at sysRoot.
func NewFileLoader(sys machine.Machine, sysRoot string) *FileLoader {
	return &FileLoader{sys: sys, sysRoot: sysRoot, kernel: compress.None, inKernel: map[compress.Format]bool{}}
}

// Load loads the module file at path with the parameter string params. An
// error wrapping EEXIST means the module was already loaded.
func (l *FileLoader) Load(path, params string) (err error) {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module: %w", err)
	}
	defer f.Close()
	var head [compress.MagicSize]byte
	n, err := io.ReadFull(f, head[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	c := compress.Detect(head[:n])
	if c == compress.None {
		// finit_module reads from offset 0 whatever the file position.
		if err := retry(func() error { return l.sys.FinitModule(int(f.Fd()), params, 0) }); err != nil {
			return fmt.Errorf("finit_module %s: %w", path, err)
		}
		return nil
	}
	if l.tryInKernel(c) {
		kerr := retry(func() error { return l.sys.FinitModule(int(f.Fd()), params, compressedFileFlag) })
		if kerr == nil {
			l.succeeded(c)
			return nil
		}
		if !isUnsupported(kerr) {
			return fmt.Errorf("finit_module %s (%s, decompressed by the kernel): %w", path, c, kerr)
		}
		// EINVAL may also mean a damaged module: the method counts as
		// refused only once stage0's own decompression loads it.
		defer func() {
			if err == nil {
				l.refused(c)
			}
		}()
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	image, err := decompressAll(f, path)
	if err != nil {
		return err
	}
	if err := retry(func() error { return l.sys.InitModule(image, params) }); err != nil {
		return fmt.Errorf("init_module %s (%s, decompressed by stage0): %w", path, c, err)
	}
	return nil
}

// tryInKernel reports whether a module compressed with c should be handed
// to the kernel to decompress.
func (l *FileLoader) tryInKernel(c compress.Format) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.read {
		l.read = true
		b, err := os.ReadFile(filepath.Join(l.sysRoot, "module", "compression"))
		if err == nil {
			l.kernel = parseCompression(strings.TrimSpace(string(b)))
		}
	}
	if ok, known := l.inKernel[c]; known {
		return ok
	}
	// The kernel names the one method it decompresses; another would be
	// refused with EINVAL. No file (no sysfs attribute, or an old kernel):
	// one try tells.
	return l.kernel == compress.None || l.kernel == c
}

func (l *FileLoader) refused(c compress.Format) {
	l.mu.Lock()
	l.inKernel[c] = false
	l.mu.Unlock()
}

// InKernel reports what Load learnt about compression c: whether the kernel
// decompresses it (known only after a module of that kind was loaded).
func (l *FileLoader) InKernel(c compress.Format) (ok, known bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ok, known = l.inKernel[c]
	return ok, known
}

func (l *FileLoader) succeeded(c compress.Format) {
	l.mu.Lock()
	if _, known := l.inKernel[c]; !known {
		l.inKernel[c] = true
	}
	l.mu.Unlock()
}

// retry calls fn again while it fails with EINTR.
func retry(fn func() error) error {
	for {
		err := fn()
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// parseCompression maps /sys/module/compression's word (xz, zstd or gzip,
// as compress names them) to a format; anything else is None.
func parseCompression(s string) compress.Format {
	if f := compress.Format(s); slices.Contains(kmod.Formats(), f) {
		return f
	}
	return compress.None
}

// decompressAll returns the decompressed contents of the module file r.
func decompressAll(f *os.File, path string) ([]byte, error) {
	zr, c, err := compress.DetectReader(f)
	if err != nil {
		return nil, fmt.Errorf("decompress module %s: %w", path, err)
	}
	defer zr.Close()
	var buf []byte
	if st, err := f.Stat(); err == nil {
		// Modules compress about 3:1; start there to save regrowth.
		buf = make([]byte, 0, 4*st.Size())
	}
	buf, err = readAll(zr, buf)
	if err != nil {
		return nil, fmt.Errorf("decompress module %s (%s): %w", path, c, err)
	}
	return buf, nil
}

// readAll is io.ReadAll into buf's spare capacity.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
