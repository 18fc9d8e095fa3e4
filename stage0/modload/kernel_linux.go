package modload

import (
	"errors"

	"golang.org/x/sys/unix"
)

// isUnsupported reports the errors that mean "this kernel cannot
// decompress this file": EOPNOTSUPP (built without
// CONFIG_MODULE_DECOMPRESS), EINVAL (flag unknown before 5.17, or a
// compression other than the one it was built with).
func isUnsupported(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL)
}

// isExist reports "already loaded".
func isExist(err error) bool { return errors.Is(err, unix.EEXIST) }

// isNoDevice reports a module whose init found no hardware (ENODEV, ENXIO).
func isNoDevice(err error) bool { return errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) }
