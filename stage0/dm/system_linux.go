package dm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// LinuxSystem runs the tools with os/exec through do (PID 1 passes its
// reaper's Do, so reaping does not steal their status), talks to the user
// on the terminal tty() names (looked up when used: /sys may not be mounted
// yet when the System is made), and reads sysfs at sysRoot, /dev at devRoot.
func LinuxSystem(sysRoot, devRoot string, tty func() string, do func(func() error) error) System {
	return System{
		Mappings: func() ([]Mapping, error) { return Mappings(sysRoot) },
		Link:     func(maps []Mapping) error { return Link(devRoot, maps) },
		Run: func(ctx context.Context, argv, env []string, stdin []byte) ([]byte, int, error) {
			var out bytes.Buffer
			err := do(func() error {
				cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
				cmd.Env = append(os.Environ(), env...)
				cmd.Stdin = bytes.NewReader(stdin)
				cmd.Stdout, cmd.Stderr = &out, &out
				return cmd.Run()
			})
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				return out.Bytes(), exit.ExitCode(), nil
			}
			return out.Bytes(), 0, err
		},
		Ask: func(ctx context.Context, prompt string) ([]byte, error) { return askNoEcho(tty(), prompt) },
		Say: func(line string) {
			if f, err := os.OpenFile(tty(), os.O_WRONLY|unix.O_NOCTTY, 0); err == nil {
				fmt.Fprintln(f, line)
				f.Close()
			}
		},
		ReadFile:       os.ReadFile,
		ReadDeviceFile: readDeviceFile,
	}
}

// readDeviceFile mounts node read-only (and nosuid, nodev, noexec) on a
// new 0700 directory under the initramfs's /tmp — not /run, which moves
// into the real root — reads path, then unmounts and removes the
// directory. The file is read into memory only.
func readDeviceFile(_ context.Context, node, fsType, path string) (data []byte, err error) {
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

// askNoEcho prints prompt on tty and reads a line with echo off, restoring
// the terminal settings afterwards.
func askNoEcho(tty, prompt string) ([]byte, error) {
	f, err := os.OpenFile(tty, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", tty, err)
	}
	defer f.Close()
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("%s: get terminal settings: %w", tty, err)
	}
	noEcho := *old
	noEcho.Lflag &^= unix.ECHO | unix.ECHOE | unix.ECHOK | unix.ECHONL
	noEcho.Lflag |= unix.ICANON
	if err := unix.IoctlSetTermios(fd, unix.TCSETSF, &noEcho); err != nil {
		return nil, fmt.Errorf("%s: turn echo off: %w", tty, err)
	}
	defer func() {
		unix.IoctlSetTermios(fd, unix.TCSETS, old) //nolint:errcheck // best effort; nothing better to do
		fmt.Fprint(f, "\n")
	}()
	fmt.Fprint(f, prompt)
	line, err := bufio.NewReader(f).ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return nil, fmt.Errorf("read %s: %w", tty, err)
	}
	return bytes.TrimRight(line, "\r\n"), nil
}
