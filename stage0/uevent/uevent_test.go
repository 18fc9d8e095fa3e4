package uevent

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  string
		want *Event
	}{
		{"block partition add",
			"add@/devices/pci0000:00/0000:00:04.0/virtio1/block/vda/vda1\x00ACTION=add\x00DEVPATH=/devices/pci0000:00/0000:00:04.0/virtio1/block/vda/vda1\x00SUBSYSTEM=block\x00MAJOR=254\x00MINOR=1\x00DEVNAME=vda1\x00DEVTYPE=partition\x00DISKSEQ=9\x00PARTN=1\x00PARTNAME=root fs\x00SEQNUM=1234\x00",
			&Event{Action: "add", DevPath: "/devices/pci0000:00/0000:00:04.0/virtio1/block/vda/vda1", Subsystem: "block", Env: map[string]string{
				"ACTION": "add", "DEVPATH": "/devices/pci0000:00/0000:00:04.0/virtio1/block/vda/vda1", "SUBSYSTEM": "block",
				"MAJOR": "254", "MINOR": "1", "DEVNAME": "vda1", "DEVTYPE": "partition", "DISKSEQ": "9", "PARTN": "1", "PARTNAME": "root fs", "SEQNUM": "1234"}}},
		{"virtio device with modalias",
			"add@/devices/pci0000:00/0000:00:04.0/virtio1\x00ACTION=add\x00DEVPATH=/devices/pci0000:00/0000:00:04.0/virtio1\x00SUBSYSTEM=virtio\x00MODALIAS=virtio:d00000002v00001AF4\x00SEQNUM=800",
			&Event{Action: "add", DevPath: "/devices/pci0000:00/0000:00:04.0/virtio1", Subsystem: "virtio", Env: map[string]string{
				"ACTION": "add", "DEVPATH": "/devices/pci0000:00/0000:00:04.0/virtio1", "SUBSYSTEM": "virtio", "MODALIAS": "virtio:d00000002v00001AF4", "SEQNUM": "800"}}},
		{"header only", "remove@/devices/virtual/block/loop0", &Event{Action: "remove", DevPath: "/devices/virtual/block/loop0", Env: map[string]string{}}},
	} {
		got, err := Parse([]byte(tc.msg))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Parse = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "\x00", "libudev\x00\xfe\xed\xca\xfe", "noatsign\x00A=b", "@/x", "add@"} {
		if e, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", bad, e)
		}
	}
}

// TestListen subscribes to real kernel events and triggers one by writing
// "change" to a device's uevent file (needs root).
func TestListen(t *testing.T) {
	testenv.NeedRoot(t, "writing a device's uevent file")
	c, err := Listen()
	if err != nil {
		t.Fatalf("Listen = %v", err)
	}
	const devpath = "/devices/virtual/mem/null"
	if err := os.WriteFile("/sys"+devpath+"/uevent", []byte("change"), 0); err != nil {
		c.Close()
		t.Fatalf("trigger uevent (needs root and sysfs): %v", err)
	}
	got := make(chan *Event, 1)
	go func() {
		defer close(got)
		for {
			e, err := c.Read()
			if err != nil {
				return
			}
			if e.DevPath == devpath && e.Action == "change" {
				got <- e
				return
			}
		}
	}()
	// Close after a generous bound so a missing event fails instead of
	// hanging; Close must also unblock the reader.
	timer := time.AfterFunc(10*time.Second, func() { c.Close() })
	defer timer.Stop()
	e, ok := <-got
	if !ok {
		t.Fatalf("no change event for %s (is this a network namespace without uevents?)", devpath)
	}
	if e.Subsystem != "mem" || e.Get("DEVNAME") != "null" {
		t.Errorf("event = %+v, want subsystem mem, DEVNAME null", e)
	}
	c.Close()
	if _, err := c.Read(); !errors.Is(err, os.ErrClosed) && !strings.Contains(err.Error(), "closed") {
		t.Errorf("Read after Close = %v, want os.ErrClosed", err)
	}
}
