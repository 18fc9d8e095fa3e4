package console

import (
	"bufio"
	"bytes"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Ask prints prompt on tty and reads a line with echo off (a passphrase),
// restoring the terminal settings afterwards. The newline is removed.
func Ask(tty, prompt string) ([]byte, error) {
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

// Say prints line on tty, if it can be opened.
func Say(tty, line string) {
	if f, err := os.OpenFile(tty, os.O_WRONLY|unix.O_NOCTTY, 0); err == nil {
		fmt.Fprintln(f, line)
		f.Close()
	}
}
