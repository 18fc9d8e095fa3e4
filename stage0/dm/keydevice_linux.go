package dm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ReadDeviceFile mounts node read-only (and nosuid, nodev, noexec) on a
// new 0700 directory under the initramfs's /tmp — not /run, which moves
// into the real root — reads path, then unmounts and removes the
// directory. The file is read into memory only.
func ReadDeviceFile(_ context.Context, node, fsType, path string) (data []byte, err error) {
	tmp := os.TempDir()
	if err := os.MkdirAll(tmp, 0o1777); err != nil {
		return nil, fmt.Errorf("key device %s: %w", node, err)
	}
	dir, err := os.MkdirTemp(tmp, "keydev-")
	if err != nil {
		return nil, fmt.Errorf("key device %s: %w", node, err)
	}
	defer os.Remove(dir)
	opts := ""
	if fsType == "vfat" {
		opts = "iocharset=utf8" // the kernel's default charset may not be in the image
	}
	flags := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Mount(node, dir, fsType, flags, opts); err != nil {
		return nil, fmt.Errorf("mount the key device %s (%s) read-only: %w", node, fsType, err)
	}
	defer func() {
		if uerr := unix.Unmount(dir, 0); uerr != nil {
			// Lazily, so the key device does not stay reachable at switch_root.
			unix.Unmount(dir, unix.MNT_DETACH) //nolint:errcheck // already reporting an error
			if err == nil {
				err = fmt.Errorf("unmount the key device %s: %w", node, uerr)
			}
		}
	}()
	rel := filepath.Clean("/" + path)
	data, err = os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		return nil, fmt.Errorf("read %s on the key device %s: %w", rel, node, err)
	}
	return data, nil
}
