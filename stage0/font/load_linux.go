package font

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The console font ioctls (linux/kd.h).
const (
	kdFontOp     = 0x4B72 // KDFONTOP
	pioUnimap    = 0x4B67 // PIO_UNIMAP
	pioUnimapClr = 0x4B68 // PIO_UNIMAPCLR
	fontOpSet    = 0      // KD_FONT_OP_SET
)

// fontOp is struct console_font_op.
type fontOp struct {
	Op, Flags, Width, Height, CharCount uint32
	Data                                unsafe.Pointer
}

// unimapDesc is struct unimapdesc.
type unimapDesc struct {
	Count   uint16
	Entries unsafe.Pointer
}

// unimapInit is struct unimapinit; zeros ask for the kernel's defaults.
type unimapInit struct{ HashSize, HashStep, HashLevel uint16 }

// Load sets f as the font of the virtual terminal tty (/dev/tty0: the
// foreground one, where prompts appear) and replaces its Unicode map with
// the font's table when it has one. A serial console has no font.
func Load(tty string, f *Font) error {
	t, err := os.OpenFile(tty, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("font: %w", err)
	}
	defer t.Close()
	data := f.KernelData()
	op := fontOp{Op: fontOpSet, Width: uint32(f.Width), Height: uint32(f.Height), CharCount: uint32(f.Count), Data: unsafe.Pointer(&data[0])}
	err = ioctl(t, kdFontOp, unsafe.Pointer(&op))
	runtime.KeepAlive(data)
	if err != nil {
		return fmt.Errorf("font: set %s on %s: %w", f, tty, err)
	}
	pairs := f.Pairs()
	if len(pairs) == 0 {
		return nil
	}
	if err := ioctl(t, pioUnimapClr, unsafe.Pointer(&unimapInit{})); err != nil {
		return fmt.Errorf("font: clear the Unicode map of %s: %w", tty, err)
	}
	desc := unimapDesc{Count: uint16(len(pairs)), Entries: unsafe.Pointer(&pairs[0])}
	err = ioctl(t, pioUnimap, unsafe.Pointer(&desc))
	runtime.KeepAlive(pairs)
	if err != nil {
		return fmt.Errorf("font: load the %d-entry Unicode map on %s: %w", len(pairs), tty, err)
	}
	return nil
}

func ioctl(f *os.File, req uintptr, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), req, uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}
