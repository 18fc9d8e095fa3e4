// Package kmod reads and writes Linux kernel module metadata: the .modinfo
// section of a module file (plain, .xz, .zst or .gz), the text index files
// depmod and the kernel build write (modules.dep, modules.alias, …), and an
// Index that answers what to load for a device and in which order.
//
// It is used by both the image generator and stage0, so it stays small and
// depends only on the standard library and the decompressors.
package kmod

import (
	"path"
	"strings"
)

// Normalize returns a module name in canonical form: '-' becomes '_', as
// the kernel and kmod treat the two as the same character in names.
func Normalize(name string) string {
	return strings.ReplaceAll(name, "-", "_")
}

// NormalizeAlias is Normalize for alias patterns and modalias strings, as
// kmod does it: '-' becomes '_' except inside a bracket expression.
func NormalizeAlias(s string) string {
	if !strings.ContainsRune(s, '-') {
		return s
	}
	b := []byte(s)
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '-':
			b[i] = '_'
		case '[':
			for i < len(b) && b[i] != ']' {
				i++
			}
		}
	}
	return string(b)
}

// NameFromPath returns the normalized module name of a module file path:
// "kernel/drivers/usb/storage/usb-storage.ko.xz" → "usb_storage".
func NameFromPath(p string) string {
	return Normalize(StripExt(path.Base(p)))
}

// StripExt removes the module file extension (".ko" plus an optional
// compression suffix) from a file name or path.
func StripExt(p string) string {
	p = StripCompressionExt(p)
	return strings.TrimSuffix(p, ".ko")
}

// IsModuleFile reports whether a file name has a module extension:
// .ko, .ko.xz, .ko.zst or .ko.gz.
func IsModuleFile(name string) bool {
	return strings.HasSuffix(StripCompressionExt(name), ".ko")
}
