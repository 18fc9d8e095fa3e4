package modload

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Kernel returns the System that loads modules into the running kernel
// with finit_module(2). Modules must be uncompressed: the image stores them
// so, and in-kernel decompression (MODULE_INIT_COMPRESSED_FILE) needs
// Linux ≥ 6.4 with the matching compressor built in.
func Kernel() System {
	return System{LoadModule: finitModule}
}

func finitModule(path, params string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		err = unix.FinitModule(int(f.Fd()), params, 0)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("finit_module %s: %w", path, err)
	}
	return nil
}

// isExist reports "already loaded".
func isExist(err error) bool { return errors.Is(err, unix.EEXIST) }

// isNoDevice reports a module whose init found no hardware (ENODEV, ENXIO).
func isNoDevice(err error) bool { return errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) }
