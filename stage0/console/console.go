// Package console finds the terminal behind /dev/console and runs an
// interactive program (the emergency shell) on it as a session leader with
// that terminal as its controlling tty, so job control and Ctrl-C work.
package console

import (
	"os"
	"path/filepath"
	"strings"
)

// TTY returns the device node of the terminal /dev/console writes to: the
// last name in sysRoot/class/tty/console/active (the kernel documents the
// last one as the /dev/console device), with tty0 ("the current virtual
// terminal") replaced by the VT it stands for. It falls back to
// devRoot/console. /dev/console itself cannot be a controlling terminal,
// which is why busybox has "cttyhack" for the same job.
func TTY(sysRoot, devRoot string) string {
	fallback := filepath.Join(devRoot, "console")
	b, err := os.ReadFile(filepath.Join(sysRoot, "class", "tty", "console", "active"))
	if err != nil {
		return fallback
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return fallback
	}
	name := f[len(f)-1]
	if name == "tty0" {
		if b, err := os.ReadFile(filepath.Join(sysRoot, "class", "tty", "tty0", "active")); err == nil {
			if vt := strings.TrimSpace(string(b)); vt != "" {
				name = vt
			}
		}
	}
	p := filepath.Join(devRoot, name)
	if _, err := os.Stat(p); err != nil {
		return fallback
	}
	return p
}

// ShellEnv returns the environment for the emergency shell: the kernel's
// environment for init plus a PATH covering the image and a prompt that
// says where the user is.
func ShellEnv(base []string) []string {
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "PS1=pkginitrd# ", "HOME=/", "TERM=linux"}
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if k == "PATH" || k == "PS1" || k == "HOME" {
			continue
		}
		if k == "TERM" {
			env[3] = kv
			continue
		}
		env = append(env, kv)
	}
	return env
}
