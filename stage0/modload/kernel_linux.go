package modload

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Kernel returns the System that loads modules into the running kernel:
// plain modules with finit_module(2), compressed ones (.ko.xz, .ko.zst,
// .ko.gz) with finit_module and MODULE_INIT_COMPRESSED_FILE when the kernel
// decompresses their method (/sys/module/compression), else decompressed
// here and loaded with init_module(2). See FileLoader.
func Kernel() System {
	return System{LoadModule: NewFileLoader(KernelSyscalls(), "/sys").Load}
}

// KernelSyscalls returns the real finit_module and init_module.
func KernelSyscalls() Syscalls {
	return Syscalls{
		FinitModule: unix.FinitModule,
		InitModule:  unix.InitModule,
		IsUnsupported: func(err error) bool {
			return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL)
		},
	}
}

// isExist reports "already loaded".
func isExist(err error) bool { return errors.Is(err, unix.EEXIST) }

// isNoDevice reports a module whose init found no hardware (ENODEV, ENXIO).
func isNoDevice(err error) bool { return errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) }
