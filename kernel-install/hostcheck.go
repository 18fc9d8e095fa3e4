package kernelinstall

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// HostOnlyBlocker says why host-only detection cannot describe the machine
// that will boot the image, or returns "" when nothing stands in the way.
// root is the system's root directory ("/", or a --sysroot record) and proc
// the /proc detection reads. A kernel hook that gets a reason builds a
// generic image instead of failing: dpkg runs hooks in chroots and
// containers, where the loaded modules and the mounted root are another
// machine's.
func HostOnlyBlocker(root, proc string) string {
	if _, err := os.Stat(filepath.Join(proc, "modules")); err != nil {
		return fmt.Sprintf("no %s (is /proc mounted?)", filepath.Join(proc, "modules"))
	}
	if c := container(root, proc); c != "" {
		return "running in a container (" + c + ")"
	}
	// Like ischroot(1) and systemd-detect-virt --chroot: PID 1's root
	// differs from ours. Unreadable (not root, hidepid): not decided.
	init, err1 := os.Stat(filepath.Join(proc, "1", "root"))
	self, err2 := os.Stat(root)
	if err1 == nil && err2 == nil && !os.SameFile(init, self) {
		return "running in a chroot (the root directory is not PID 1's)"
	}
	return ""
}

// container names the container manager root runs under, as
// systemd-detect-virt --container finds it, or returns "".
func container(root, proc string) string {
	if b, err := os.ReadFile(filepath.Join(root, "run/systemd/container")); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s
		}
		return "run/systemd/container"
	}
	if env, err := os.ReadFile(filepath.Join(proc, "1", "environ")); err == nil {
		for _, kv := range bytes.Split(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("container=")); ok && len(v) > 0 {
				return string(v)
			}
		}
	}
	for _, f := range []struct{ path, name string }{{".dockerenv", "docker"}, {"run/.containerenv", "podman"}} {
		if _, err := os.Stat(filepath.Join(root, f.path)); err == nil {
			return f.name
		}
	}
	return ""
}
