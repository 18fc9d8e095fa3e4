package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// qmp is a qemu machine protocol connection (-qmp unix:…).
type qmp struct {
	c *net.UnixConn
	r *bufio.Reader
}

func dialQMP(t *testing.T, sock string) *qmp {
	t.Helper()
	var c net.Conn
	var err error
	for i := 0; i < 100; i++ { // qemu creates the socket shortly after it starts
		if c, err = net.Dial("unix", sock); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("connect to qemu's QMP socket: %v", err)
	}
	q := &qmp{c: c.(*net.UnixConn), r: bufio.NewReader(c)}
	t.Cleanup(func() { c.Close() })
	if _, err := q.r.ReadString('\n'); err != nil { // the greeting
		t.Fatalf("QMP greeting: %v", err)
	}
	q.do(t, "qmp_capabilities", nil)
	return q
}

// do runs a command and waits for its answer (skipping events).
func (q *qmp) do(t *testing.T, cmd string, args any) {
	t.Helper()
	msg, _ := json.Marshal(map[string]any{"execute": cmd, "arguments": args})
	if args == nil {
		msg, _ = json.Marshal(map[string]any{"execute": cmd})
	}
	if _, err := q.c.Write(append(msg, '\n')); err != nil {
		t.Fatalf("QMP %s: %v", cmd, err)
	}
	for {
		line, err := q.r.ReadString('\n')
		if err != nil {
			t.Fatalf("QMP %s: %v", cmd, err)
		}
		if strings.Contains(line, `"return"`) {
			return
		}
		if strings.Contains(line, `"error"`) {
			t.Fatalf("QMP %s: %s", cmd, line)
		}
	}
}

// pressKeys presses each key (QEMU key codes, "ret" for Enter) on the
// guest's PS/2 keyboard: scancodes, which the console keymap translates.
func (q *qmp) pressKeys(t *testing.T, keys ...string) {
	t.Helper()
	for _, k := range keys {
		q.do(t, "send-key", map[string]any{"keys": []map[string]string{{"type": "qcode", "data": k}}})
	}
}

// TestKeymapPassphrase unlocks the LUKS fixture (passphrase
// "pkginitrd-test") with the passphrase typed on the VT keyboard of a
// guest whose image carries the French AZERTY keymap (--keymap
// fr-latin1): a French user types "-" with the key that is "6" on a US
// keyboard, so the keys pressed are p k g i n i t r d 6 t e s t, which the
// kernel's US map would turn into "pkginitrd6test" (a wrong passphrase).
//
// The prompt is on the VT (console=tty0 comes last, so /dev/console is
// tty0), whose output the test cannot read; the serial console only shows
// the kernel's messages. So the test types the line every few seconds
// (stage0 flushes what was typed before it asks) until the kernel mounts
// the root from the unlocked mapping, and then the root's init powers off.
func TestKeymapPassphrase(t *testing.T) {
	e := setup(t)
	disks := makeDMDisksFrom(t, e, fixtureRoot(t))
	kernel, initrd := buildImage(t, e, "--generic", "--keymap", "fr-latin1")
	dir, err := os.MkdirTemp("", "qmp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s")
	extra := append(discardDrives([]string{disks.luks}), "-qmp", "unix:"+sock+",server=on,wait=off")
	v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, extraArgs: extra,
		cmdline: "root=UUID=" + rootUUID + " rd.luks.uuid=" + luksUUID + " console=tty0"})
	q := dialQMP(t, sock)
	v.expect(`Run /init as init process`, bootTimeout)
	keys := strings.Split("p k g i n i t r d 6 t e s t ret", " ")
	mounted := regexp.MustCompile(`EXT4-fs \(dm-0\): mounted filesystem`)
	for try := 0; ; try++ {
		if try == 30 {
			t.Fatal("the root on the LUKS mapping was not mounted after typing the passphrase with the French keymap 30 times")
		}
		q.pressKeys(t, keys...)
		if _, err := v.wait(mounted, 10*time.Second); err == nil {
			t.Logf("unlocked after %d typings, %s", try+1, time.Since(v.started).Round(100*time.Millisecond))
			break
		} else if strings.Contains(err.Error(), "exited") {
			t.Fatal(fmt.Errorf("qemu: %w", err))
		}
	}
	v.expect(`reboot: Power down`, bootTimeout) // the root's init reached its end
	v.waitExit(time.Minute)

	// The control: the same keys with the kernel's US map
	// (rd.vconsole.keymap=us) never unlock the container.
	os.Remove(sock)
	v = bootVM(t, vmConfig{kernel: kernel, initrd: initrd, extraArgs: extra,
		cmdline: "root=UUID=" + rootUUID + " rd.luks.uuid=" + luksUUID + " console=tty0 rd.vconsole.keymap=us"})
	q = dialQMP(t, sock)
	v.expect(`Run /init as init process`, bootTimeout)
	for try := 0; try < 6; try++ {
		q.pressKeys(t, keys...)
		if _, err := v.wait(mounted, 10*time.Second); err == nil {
			t.Fatal("the US keymap unlocked the container with the keys of the French passphrase")
		}
	}
}
