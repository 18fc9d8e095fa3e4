package keymap

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The console keyboard ioctls (linux/kd.h).
const (
	kdSetKBEntry = 0x4B47 // KDSKBENT
)

// kbEntry is struct kbentry.
type kbEntry struct {
	Table uint8
	Index uint8
	Value uint16
}

// Load sets every key of m in the kernel's keyboard tables through tty, a
// virtual terminal (/dev/tty0): the tables are shared by all VTs. A
// serial console has none, and the ioctl fails there.
func Load(tty string, m *Map) error {
	f, err := os.OpenFile(tty, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("keymap: %w", err)
	}
	defer f.Close()
	for _, e := range m.Entries() {
		ent := kbEntry{Table: e.Table, Index: e.Key, Value: e.Value}
		if err := ioctl(f, kdSetKBEntry, &ent); err != nil {
			return fmt.Errorf("keymap: set key %d of table %d to %#x on %s: %w", e.Key, e.Table, e.Value, tty, err)
		}
	}
	return nil
}

func ioctl(f *os.File, req uintptr, ent *kbEntry) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), req, uintptr(unsafe.Pointer(ent)))
	if errno != 0 {
		return errno
	}
	return nil
}
