// Package uevent receives the kernel's device events (uevents) from a
// NETLINK_KOBJECT_UEVENT socket, without udev and without the net package
// (the stage0 binary stays static and cgo-free), and parses them.
package uevent

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// ErrOverflow means the kernel dropped events because the socket buffer was
// full: the caller should rescan sysfs (coldplug) to catch up.
var ErrOverflow = errors.New("uevent: receive buffer overflowed, events lost")

// Event is one kernel uevent.
type Event struct {
	Action    string            // add, remove, change, move, online, offline, bind, unbind
	DevPath   string            // sysfs path below /sys, e.g. /devices/pci0000:00/…/block/vda
	Subsystem string            // block, pci, virtio, …
	Env       map[string]string // every KEY=VALUE of the event (MODALIAS, DEVNAME, DEVTYPE, …)
}

// Get returns the value of key, or "".
func (e *Event) Get(key string) string { return e.Env[key] }

// String returns "action devpath (subsystem)".
func (e *Event) String() string {
	return fmt.Sprintf("%s %s (%s)", e.Action, e.DevPath, e.Subsystem)
}

// Parse decodes a kernel uevent datagram: "ACTION@DEVPATH\0KEY=VALUE\0…".
// Messages re-broadcast by udev (starting "libudev\0") are rejected.
func Parse(msg []byte) (*Event, error) {
	fields := bytes.Split(bytes.TrimRight(msg, "\x00"), []byte{0})
	if len(fields) == 0 || len(fields[0]) == 0 {
		return nil, errors.New("uevent: empty message")
	}
	hdr := string(fields[0])
	if hdr == "libudev" {
		return nil, errors.New("uevent: udev message, not a kernel event")
	}
	action, devpath, ok := strings.Cut(hdr, "@")
	if !ok || action == "" || devpath == "" {
		return nil, fmt.Errorf("uevent: bad header %q", hdr)
	}
	e := &Event{Action: action, DevPath: devpath, Env: make(map[string]string, len(fields))}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(string(f), "=")
		if !ok || k == "" {
			continue
		}
		e.Env[k] = v
	}
	if a := e.Env["ACTION"]; a != "" {
		e.Action = a
	}
	if p := e.Env["DEVPATH"]; p != "" {
		e.DevPath = p
	}
	e.Subsystem = e.Env["SUBSYSTEM"]
	return e, nil
}
