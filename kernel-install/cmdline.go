package kernelinstall

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Cmdline is the kernel command line configured for the system at root
// ("" = /), read as kernel-install's 90-loaderentry does: the first found
// of confRoot/cmdline (KERNEL_INSTALL_CONF_ROOT, when set),
// /etc/kernel/cmdline and /usr/lib/kernel/cmdline, lines joined by
// spaces. It returns "" when there is none (not /proc/cmdline: a UKI's
// command line must not depend on how the build machine booted).
func Cmdline(root, confRoot string) (string, error) {
	var files []string
	if confRoot != "" {
		files = append(files, filepath.Join(confRoot, "cmdline"))
	}
	files = append(files, inRoot(root, "/etc/kernel/cmdline"), inRoot(root, "/usr/lib/kernel/cmdline"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("kernel command line: %w", err)
		}
		return strings.Join(strings.Fields(string(b)), " "), nil
	}
	return "", nil
}
