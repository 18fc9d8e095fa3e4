package loop

import (
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's struct loop_info64 is 232 bytes and struct loop_config 304
// (include/uapi/linux/loop.h); a wrong size makes every ioctl fail.
func TestStructSizes(t *testing.T) {
	if got := unsafe.Sizeof(unix.LoopInfo64{}); got != 232 {
		t.Errorf("sizeof(LoopInfo64) = %d, want 232", got)
	}
	if got := unsafe.Sizeof(unix.LoopConfig{}); got != 304 {
		t.Errorf("sizeof(LoopConfig) = %d, want 304", got)
	}
	// The ioctl numbers are _IO('L', n): fixed by the ABI.
	for name, c := range map[string][2]uint{
		"LOOP_SET_FD": {unix.LOOP_SET_FD, 0x4c00}, "LOOP_CLR_FD": {unix.LOOP_CLR_FD, 0x4c01},
		"LOOP_SET_STATUS64": {unix.LOOP_SET_STATUS64, 0x4c04}, "LOOP_CONFIGURE": {unix.LOOP_CONFIGURE, 0x4c0a},
		"LOOP_CTL_GET_FREE": {unix.LOOP_CTL_GET_FREE, 0x4c82},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %#x, want %#x", name, c[0], c[1])
		}
	}
}

func TestOptionsConfig(t *testing.T) {
	for _, tc := range []struct {
		o         Options
		flags     uint32
		blockSize uint32
	}{
		{Options{}, 0, 0},
		{Options{ReadOnly: true}, unix.LO_FLAGS_READ_ONLY, 0},
		{Options{ReadOnly: true, AutoClear: true, BlockSize: 2048}, unix.LO_FLAGS_READ_ONLY | unix.LO_FLAGS_AUTOCLEAR, 2048},
	} {
		c := tc.o.Config(7, "/run/initramfs/live/LiveOS/squashfs.img")
		if c.Fd != 7 || c.Info.Flags != tc.flags || c.Size != tc.blockSize {
			t.Errorf("%+v.Config(7, …) = fd %d flags %#x block size %d, want 7 %#x %d", tc.o, c.Fd, c.Info.Flags, c.Size, tc.flags, tc.blockSize)
		}
		if got := unix.ByteSliceToString(c.Info.File_name[:]); got != "/run/initramfs/live/LiveOS/squashfs.img" {
			t.Errorf("file name = %q", got)
		}
	}
	long := "/" + strings.Repeat("d/", 40) + "image.squashfs"
	info := Options{}.Info(long)
	got := unix.ByteSliceToString(info.File_name[:])
	if len(got) != 63 || !strings.HasSuffix(long, got) {
		t.Errorf("Info(long path).File_name = %q, want the last 63 bytes of %q", got, long)
	}
}

func TestAttachRejectsBadBlockSize(t *testing.T) {
	_, err := Attach(t.TempDir(), "/nonexistent", Options{BlockSize: 1000})
	if err == nil || !strings.Contains(err.Error(), "bad block size 1000") {
		t.Errorf("Attach(block size 1000) error = %v, want a bad block size error", err)
	}
}

func TestAttachNamesMissingFile(t *testing.T) {
	_, err := Attach(t.TempDir(), "/nonexistent/squashfs.img", Options{ReadOnly: true})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/squashfs.img") {
		t.Errorf("Attach(missing file) error = %v, want it to name the file", err)
	}
}
