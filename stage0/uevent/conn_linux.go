package uevent

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// kernelGroup is the netlink multicast group the kernel sends uevents to
// (udev re-broadcasts on group 2, which we do not join).
const kernelGroup = 1

// Conn is a bound uevent socket.
type Conn struct {
	f   *os.File
	buf []byte
}

// Listen opens a NETLINK_KOBJECT_UEVENT socket subscribed to kernel events.
// Open it before coldplug so no device falls between the sysfs walk and the
// first event.
func Listen() (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("uevent: socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: kernelGroup}); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("uevent: bind: %w", err)
	}
	// Coldplug loads many drivers at once, each emitting a burst of
	// events; a large buffer makes overflow (and a rescan) rare. FORCE
	// ignores rmem_max and needs CAP_NET_ADMIN, which PID 1 has.
	const bufSize = 8 << 20
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bufSize); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, bufSize)
	}
	// The descriptor is non-blocking, so os.File puts it in the runtime
	// poller: Read blocks only its goroutine, and Close wakes it.
	return &Conn{f: os.NewFile(uintptr(fd), "uevent"), buf: make([]byte, 64<<10)}, nil
}

// Read blocks until the next event and returns it. It returns ErrOverflow
// when events were lost, and an error wrapping os.ErrClosed after Close.
// Malformed datagrams are skipped.
func (c *Conn) Read() (*Event, error) {
	for {
		n, err := c.f.Read(c.buf)
		if errors.Is(err, unix.ENOBUFS) {
			return nil, ErrOverflow
		}
		if err != nil {
			return nil, fmt.Errorf("uevent: read: %w", err)
		}
		if e, err := Parse(c.buf[:n]); err == nil {
			return e, nil
		}
	}
}

// Close closes the socket, making a blocked Read return.
func (c *Conn) Close() error { return c.f.Close() }
