package switchroot

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// deleteContents removes everything inside the directory fd (and closes
// it) that lives on device dev: subdirectories on other devices (mount
// points) are left alone, as find -xdev would. It returns how many entries
// it removed and the errors met, continuing past them.
func deleteContents(fd int, dev uint64) (int, error) {
	defer func() { _ = unix.Close(fd) }()
	names, err := readDirNames(fd)
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			errs = append(errs, fmt.Errorf("stat %s: %w", name, err))
			continue
		}
		if st.Dev != dev {
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				errs = append(errs, fmt.Errorf("open %s: %w", name, err))
				continue
			}
			m, err := deleteContents(sub, dev)
			n += m
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
			if err := unix.Unlinkat(fd, name, unix.AT_REMOVEDIR); err != nil {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", name, err))
				continue
			}
		} else if err := unix.Unlinkat(fd, name, 0); err != nil {
			errs = append(errs, fmt.Errorf("unlink %s: %w", name, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// readDirNames lists the directory fd (without "." and "..").
func readDirNames(fd int) ([]string, error) {
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return names, fmt.Errorf("getdents: %w", err)
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}
