// Package loop attaches files to loop block devices the way losetup(8)
// does, without it: a free device from /dev/loop-control
// (LOOP_CTL_GET_FREE), then LOOP_CONFIGURE (Linux 5.8+), falling back to
// LOOP_SET_FD + LOOP_SET_STATUS64 on older kernels.
package loop

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Options says how to attach a file.
type Options struct {
	ReadOnly bool
	// AutoClear detaches the device when its last user (a mount, an open
	// file) goes away. The device stays attached while the *Device
	// returned by Attach is open, so mount it before closing that.
	AutoClear bool
	// BlockSize is the device's logical block size: 0 means the kernel's
	// default (512); otherwise 512, 1024, 2048 or 4096.
	BlockSize uint32
}

// Device is an attached loop device, held open until Close.
type Device struct {
	Path   string // e.g. "/dev/loop0"
	Number int
	f      *os.File
}

// Close releases the open device file; with AutoClear the device detaches
// if nothing else (a mount) uses it.
func (d *Device) Close() error { return d.f.Close() }

// Flags returns the LO_FLAGS_* bits for o.
func (o Options) Flags() uint32 {
	var f uint32
	if o.ReadOnly {
		f |= unix.LO_FLAGS_READ_ONLY
	}
	if o.AutoClear {
		f |= unix.LO_FLAGS_AUTOCLEAR
	}
	return f
}

// Info returns the loop_info64 that describes file attached with o.
func (o Options) Info(file string) unix.LoopInfo64 {
	info := unix.LoopInfo64{Flags: o.Flags()}
	// lo_file_name is informational (losetup -l shows it); keep the tail
	// when the path is too long, as that names the file best.
	name := file
	if n := len(info.File_name) - 1; len(name) > n {
		name = name[len(name)-n:]
	}
	copy(info.File_name[:], name)
	return info
}

// Config returns the loop_config for LOOP_CONFIGURE with the backing fd.
func (o Options) Config(fd int, file string) unix.LoopConfig {
	return unix.LoopConfig{Fd: uint32(fd), Size: o.BlockSize, Info: o.Info(file)}
}

// Attach attaches file to a free loop device under devRoot (normally
// "/dev"). It retries when another process grabs the free device first.
func Attach(devRoot, file string, o Options) (*Device, error) {
	switch o.BlockSize {
	case 0, 512, 1024, 2048, 4096:
	default:
		return nil, fmt.Errorf("loop: attach %s: bad block size %d", file, o.BlockSize)
	}
	mode := os.O_RDWR
	if o.ReadOnly {
		mode = os.O_RDONLY
	}
	backing, err := os.OpenFile(file, mode|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("loop: attach: %w", err)
	}
	defer backing.Close()
	ctl, err := os.OpenFile(filepath.Join(devRoot, "loop-control"), os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("loop: attach %s: %w (is the loop module loaded?)", file, err)
	}
	defer ctl.Close()
	var lastErr error
	for try := 0; try < 8; try++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("loop: attach %s: LOOP_CTL_GET_FREE: %w", file, err)
		}
		d, err := attachTo(devRoot, n, backing, file, o, mode)
		if errors.Is(err, unix.EBUSY) {
			lastErr = err // raced with another user of loop-control
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("loop: attach %s: %w", file, err)
		}
		return d, nil
	}
	return nil, fmt.Errorf("loop: attach %s: no free loop device after retries: %w", file, lastErr)
}

func attachTo(devRoot string, n int, backing *os.File, file string, o Options, mode int) (*Device, error) {
	path := filepath.Join(devRoot, fmt.Sprintf("loop%d", n))
	f, err := openNode(path, n, mode)
	if err != nil {
		return nil, err
	}
	fd := int(f.Fd())
	cfg := o.Config(int(backing.Fd()), file)
	err = unix.IoctlLoopConfigure(fd, &cfg)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY) {
		// Before Linux 5.8: attach, then set flags and block size.
		err = legacyAttach(fd, int(backing.Fd()), file, o)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Device{Path: path, Number: n, f: f}, nil
}

func legacyAttach(fd, backing int, file string, o Options) error {
	if err := unix.IoctlSetInt(fd, unix.LOOP_SET_FD, backing); err != nil {
		return fmt.Errorf("LOOP_SET_FD: %w", err)
	}
	info := o.Info(file)
	if err := unix.IoctlLoopSetStatus64(fd, &info); err != nil {
		_ = unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0) // undo; the first error is the one to report
		return fmt.Errorf("LOOP_SET_STATUS64: %w", err)
	}
	if o.BlockSize != 0 && o.BlockSize != 512 {
		if err := unix.IoctlSetInt(fd, unix.LOOP_SET_BLOCK_SIZE, int(o.BlockSize)); err != nil {
			_ = unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0) // undo; the first error is the one to report
			return fmt.Errorf("LOOP_SET_BLOCK_SIZE %d: %w", o.BlockSize, err)
		}
	}
	return nil
}

// openNode opens /dev/loopN, creating the node when devtmpfs has not (yet).
func openNode(path string, n, mode int) (*os.File, error) {
	f, err := os.OpenFile(path, mode|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		const loopMajor = 7
		if merr := unix.Mknod(path, unix.S_IFBLK|0o660, int(unix.Mkdev(loopMajor, uint32(n)))); merr != nil && !errors.Is(merr, unix.EEXIST) {
			return nil, fmt.Errorf("create %s: %w", path, merr)
		}
		f, err = os.OpenFile(path, mode|unix.O_CLOEXEC, 0)
	}
	return f, err
}

// Detach clears the loop device at path (LOOP_CLR_FD). A device that is
// still mounted detaches when unmounted (the kernel sets autoclear).
func Detach(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loop: detach: %w", err)
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0); err != nil && !errors.Is(err, unix.ENXIO) {
		return fmt.Errorf("loop: detach %s: %w", path, err)
	}
	return nil
}
