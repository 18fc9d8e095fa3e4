package shutdown

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DMRemoveRequest returns the struct dm_ioctl (linux/dm-ioctl.h) of a
// DM_DEV_REMOVE for the device called name. Version 4.0.0 asks for any
// 4.x kernel interface; the request carries no payload beyond the struct.
func DMRemoveRequest(name string) (unix.DmIoctl, error) {
	var req unix.DmIoctl
	if name == "" || len(name) >= len(req.Name) {
		return req, fmt.Errorf("device-mapper name %q: want 1 to %d bytes", name, len(req.Name)-1)
	}
	req.Version = [3]uint32{unix.DM_VERSION_MAJOR, 0, 0}
	req.Data_size = unix.SizeofDmIoctl
	req.Data_start = unix.SizeofDmIoctl
	copy(req.Name[:], name) // NUL-terminated: the array is zeroed and longer
	return req, nil
}

// RemoveDM removes the device-mapper device name with DM_DEV_REMOVE on the
// control node (under devRoot; sysRoot is sysfs), as `dmsetup remove` does. The kernel refuses (EBUSY)
// while the device is open: mounted, or held by another device. Removing
// a dm-crypt device frees its key, which the kernel wipes first.
func RemoveDM(sysRoot, devRoot, name string) error {
	req, err := DMRemoveRequest(name)
	if err != nil {
		return err
	}
	ctl, err := openControl(sysRoot, devRoot)
	if err != nil {
		return fmt.Errorf("remove device-mapper device %s: %w", name, err)
	}
	defer ctl.Close()
	for try := 0; ; try++ {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, ctl.Fd(), unix.DM_DEV_REMOVE, uintptr(unsafe.Pointer(&req)))
		switch {
		case errno == 0:
			return nil
		case errno == unix.EINTR:
			continue
		case errno == unix.EBUSY && try < 4:
			// The last closer (an unmount just done) may still be on its
			// way out, as libdevmapper's remove retries know.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		return fmt.Errorf("remove device-mapper device %s: DM_DEV_REMOVE: %w", name, errno)
	}
}

// openControl opens devRoot/mapper/control, creating the node from
// sysfs's device-mapper misc device if devtmpfs has not.
func openControl(sysRoot, devRoot string) (*os.File, error) {
	p := filepath.Join(devRoot, unix.DM_DIR, unix.DM_CONTROL_NODE)
	f, err := os.OpenFile(p, os.O_RDWR|unix.O_CLOEXEC, 0)
	if !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	b, rerr := os.ReadFile(filepath.Join(sysRoot, "class", "misc", "device-mapper", "dev"))
	if rerr != nil {
		return nil, fmt.Errorf("%w (and no device-mapper in sysfs: %v)", err, rerr)
	}
	majS, minS, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	ma, err1 := strconv.ParseUint(majS, 10, 32)
	mi, err2 := strconv.ParseUint(minS, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return nil, fmt.Errorf("device-mapper misc device number %q: not MAJOR:MINOR", b)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, err
	}
	if err := unix.Mknod(p, unix.S_IFCHR|0o600, int(unix.Mkdev(uint32(ma), uint32(mi)))); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, &os.PathError{Op: "mknod", Path: p, Err: err}
	}
	return os.OpenFile(p, os.O_RDWR|unix.O_CLOEXEC, 0)
}

// DMRenameRequest returns a DM_DEV_RENAME request renaming the device-mapper
// device old to name: the struct dm_ioctl followed by the new name,
// NUL-terminated, at data_start (what `dmsetup rename` sends).
func DMRenameRequest(old, name string) ([]byte, error) {
	req, err := DMRemoveRequest(old)
	if err != nil {
		return nil, err
	}
	if name == "" || len(name) >= len(req.Name) || strings.Contains(name, "/") {
		return nil, fmt.Errorf("device-mapper name %q: want 1 to %d bytes, no slash", name, len(req.Name)-1)
	}
	size := (unix.SizeofDmIoctl + len(name) + 1 + 7) &^ 7
	req.Data_size = uint32(size)
	buf := make([]byte, size)
	copy(buf, unsafe.Slice((*byte)(unsafe.Pointer(&req)), unix.SizeofDmIoctl))
	copy(buf[unix.SizeofDmIoctl:], name)
	return buf, nil
}

// RenameDM renames the device-mapper device old to name with
// DM_DEV_RENAME on the control node; the device stays in use, its number
// and dm uuid stay the same.
func RenameDM(sysRoot, devRoot, old, name string) error {
	buf, err := DMRenameRequest(old, name)
	if err != nil {
		return err
	}
	ctl, err := openControl(sysRoot, devRoot)
	if err != nil {
		return fmt.Errorf("rename device-mapper device %s: %w", old, err)
	}
	defer ctl.Close()
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, ctl.Fd(), unix.DM_DEV_RENAME, uintptr(unsafe.Pointer(&buf[0])))
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return fmt.Errorf("rename device-mapper device %s to %s: DM_DEV_RENAME: %w", old, name, errno)
	}
}
