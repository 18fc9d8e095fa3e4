package tests

import (
	"bufio"
	"bytes"
	"encoding/binary"
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

// qmpSocket makes a directory for a QMP socket and screendumps, removed
// when the test ends, and returns it with the socket's path. It is short,
// unlike t.TempDir's: a unix socket's path must fit in 108 bytes.
func qmpSocket(t *testing.T) (dir, sock string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "qmp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir, filepath.Join(dir, "s")
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
// guest whose image loads the French AZERTY keymap: a French user types
// "-" with the key that is "6" on a US keyboard, so the keys pressed are
// p k g i n i t r d 6 t e s t, which the kernel's US map would turn into
// "pkginitrd6test" (a wrong passphrase). Two images: one built with
// --keymap fr-latin1 (as a host-only image gets the host's), and a
// generic one, whose keymap set rd.vconsole.keymap=fr-latin1 picks from.
//
// The prompt is on the VT (console=tty0 comes last, so /dev/console is
// tty0), whose output the test cannot read; the serial console only shows
// the kernel's messages. So the test types the line every few seconds
// (stage0 flushes what was typed before it asks) until the kernel mounts
// the root from the unlocked mapping, and then the root's init powers off.
func TestKeymapPassphrase(t *testing.T) {
	e := setup(t)
	disks := makeDMDisksFrom(t, e, fixtureRoot(t))
	_, sock := qmpSocket(t)
	extra := append(discardDrives([]string{disks.luks}), "-qmp", "unix:"+sock+",server=on,wait=off")
	keys := strings.Split("p k g i n i t r d 6 t e s t ret", " ")
	mounted := regexp.MustCompile(`EXT4-fs \(dm-0\): mounted filesystem`)
	for _, tc := range []struct {
		flags   []string
		cmdline string
		unlocks bool
	}{
		{[]string{"--generic", "--keymap", "fr-latin1"}, "", true},
		{[]string{"--generic"}, " rd.vconsole.keymap=fr-latin1", true},
		// The controls: the same keys with the kernel's US map never
		// unlock the container.
		{[]string{"--generic", "--keymap", "fr-latin1"}, " rd.vconsole.keymap=us", false},
		{[]string{"--generic"}, "", false},
	} {
		kernel, initrd := buildImage(t, e, tc.flags...)
		os.Remove(sock)
		v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, extraArgs: extra,
			cmdline: "root=UUID=" + rootUUID + " rd.luks.uuid=" + luksUUID + " console=tty0" + tc.cmdline})
		q := dialQMP(t, sock)
		v.expect(`Run /init as init process`, bootTimeout)
		what := fmt.Sprintf("%s%s", strings.Join(tc.flags, " "), tc.cmdline)
		tries := 30
		if !tc.unlocks {
			tries = 6
		}
		unlocked := false
		for try := 0; try < tries && !unlocked; try++ {
			q.pressKeys(t, keys...)
			if _, err := v.wait(mounted, 10*time.Second); err == nil {
				unlocked = true
				t.Logf("%s: unlocked after %d typings, %s", what, try+1, time.Since(v.started).Round(100*time.Millisecond))
			} else if strings.Contains(err.Error(), "exited") {
				t.Fatal(fmt.Errorf("%s: qemu: %w", what, err))
			}
		}
		switch {
		case unlocked && !tc.unlocks:
			t.Fatalf("%s: the US keymap unlocked the container with the keys of the French passphrase", what)
		case !unlocked && tc.unlocks:
			t.Fatalf("%s: the root on the LUKS mapping was not mounted after typing the passphrase with the French keymap %d times", what, tries)
		case unlocked:
			v.expect(`reboot: Power down`, bootTimeout) // the root's init reached its end
			v.waitExit(time.Minute)
		default:
			v.kill()
		}
	}
}

// screenLit takes a screendump of the guest's display through QMP and
// returns the share of its pixels that are not black.
func (q *qmp) screenLit(t *testing.T, dir string) float64 {
	t.Helper()
	return q.displayLit(t, dir, "")
}

// displayLit is screenLit for the display device id ("" for the first).
func (q *qmp) displayLit(t *testing.T, dir, device string) float64 {
	t.Helper()
	p := filepath.Join(dir, "screen.ppm")
	args := map[string]any{"filename": p}
	if device != "" {
		args["device"] = device
	}
	q.do(t, "screendump", args)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var w, h, max int
	parts := bytes.SplitN(data, []byte("\n"), 4) // "P6", "W H", "255", pixels
	if len(parts) == 4 {
		_, err = fmt.Sscanf(string(bytes.Join(parts[:3], []byte(" "))), "P6 %d %d %d", &w, &h, &max)
	}
	if len(parts) != 4 || err != nil || len(parts[3]) != 3*w*h {
		t.Fatalf("screendump: not a %dx%d binary PPM (%v, %d bytes)", w, h, err, len(data))
	}
	lit := 0
	for px := parts[3]; len(px) >= 3; px = px[3:] {
		if px[0] > 0x20 || px[1] > 0x20 || px[2] > 0x20 {
			lit++
		}
	}
	return float64(lit) / float64(w*h)
}

// solidFont writes a PSF2 font of 256 glyphs of 8x16 pixels, every pixel
// set, whose Unicode table maps Latin-1 to the glyph of the same number.
func solidFont(t *testing.T, dir string) string {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, []uint32{0x864ab572, 0, 32, 1, 256, 16, 16, 8}) //nolint:errcheck // bytes.Buffer
	b.Write(bytes.Repeat([]byte{0xff}, 256*16))
	for g := 0; g < 256; g++ {
		b.WriteRune(rune(g))
		b.WriteByte(0xff)
	}
	p := filepath.Join(dir, "solid.psf")
	writeFile(t, p, b.Bytes(), 0o644)
	return p
}

// TestConsoleFont boots images built with --console-font and reads the
// VGA text screen back. With a font whose glyphs are solid blocks, the
// whole screen (80x25 cells, spaces included) lights up once stage0 has
// loaded it; the control boot keeps the kernel's font
// (rd.vconsole.font=default8x16), whose screen stays mostly dark. Debian's
// default console font (console-setup's Uni2-Fixed16: PSF1, 512 glyphs
// and a Unicode table) must load too. The root is never found
// (rd.timeout=600), so stage0 waits with the screen as it is while the
// test looks.
func TestConsoleFont(t *testing.T) {
	e := setup(t)
	dir, sock := qmpSocket(t)
	solid := solidFont(t, e.workDir)
	for _, tc := range []struct {
		font, cmdline, logLine string
		lit                    func(float64) bool
	}{
		{solid, "", `loaded the console font.*glyphs="256 glyphs of 8x16".*unicode=256`, func(f float64) bool { return f > 0.8 }},
		{solid, " rd.vconsole.font=default8x16", `root device not there yet, waiting`, func(f float64) bool { return f < 0.3 }},
		{"Uni2-Fixed16", "", `loaded the console font font=Uni2-Fixed16 glyphs="512 glyphs of 8x16" unicode=[1-9]`, func(f float64) bool { return f > 0 && f < 0.3 }},
	} {
		kernel, initrd := buildImage(t, e, "--generic", "--console-font", tc.font)
		os.Remove(sock)
		v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, extraArgs: []string{"-qmp", "unix:" + sock + ",server=on,wait=off"},
			cmdline: "root=UUID=00000000-dead-beef-0000-000000000000 rd.timeout=600" + tc.cmdline})
		q := dialQMP(t, sock)
		v.expect(tc.logLine, bootTimeout)
		time.Sleep(time.Second) // the display is refreshed from video memory periodically
		lit := q.screenLit(t, dir)
		t.Logf("%s%s: %.0f%% of the screen lit, %s after start", filepath.Base(tc.font), tc.cmdline, 100*lit, time.Since(v.started).Round(100*time.Millisecond))
		if !tc.lit(lit) {
			t.Errorf("%s%s: %.0f%% of the screen lit: the font was not (or wrongly) applied\n%s", tc.font, tc.cmdline, 100*lit, v.tail(30))
		}
		v.kill()
	}
}

// TestConsoleFontTakeover: a graphics driver that takes the console over
// after stage0 loaded the font starts with the kernel's font; stage0 loads
// the font again before the passphrase prompt. The guest boots on a Cirrus
// VGA (its DRM driver is not in the image: the VGA text console stays); a
// bochs-display, whose driver the image carries, is hot-plugged once the
// font is loaded, so fbcon takes the console over late; then the LUKS disk is
// hot-plugged, and its prompt comes after the takeover. The screen of the
// new display is read before (kernel font: mostly dark) and after.
func TestConsoleFontTakeover(t *testing.T) {
	e := setup(t)
	disks := makeDMDisksFrom(t, e, fixtureRoot(t))
	dir, sock := qmpSocket(t)
	conf := filepath.Join(e.workDir, "bochs.toml")
	writeFile(t, conf, []byte("[modules]\ninclude = [\"bochs\"]\n"), 0o644)
	kernel, initrd := buildImage(t, e, "--generic", "--console-font", solidFont(t, e.workDir), "--config", conf)
	v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd,
		extraArgs: []string{"-vga", "cirrus", "-qmp", "unix:" + sock + ",server=on,wait=off", "-drive", "file=" + disks.luks + ",if=none,id=luks,format=raw"},
		cmdline:   "root=UUID=" + rootUUID + " rd.luks.uuid=" + luksUUID + " rd.timeout=600"})
	defer v.kill()
	q := dialQMP(t, sock)
	v.expect(`loaded the console font`, bootTimeout)
	q.do(t, "device_add", map[string]any{"driver": "bochs-display", "id": "gfx"})
	v.expect(`switching to colour frame buffer device`, bootTimeout)
	time.Sleep(2 * time.Second) // the display is refreshed periodically
	before := q.displayLit(t, dir, "gfx")
	q.do(t, "device_add", map[string]any{"driver": "virtio-blk-pci", "drive": "luks", "id": "disk"})
	v.expect(`the console driver changed; loaded the console font again`, bootTimeout) // then the prompt
	time.Sleep(2 * time.Second)
	after := q.displayLit(t, dir, "gfx")
	t.Logf("fbcon display lit: %.0f%% after the takeover, %.0f%% at the prompt, %s after start", 100*before, 100*after, time.Since(v.started).Round(100*time.Millisecond))
	if before > 0.5 || after < 0.8 {
		t.Errorf("fbcon display lit %.0f%% after the takeover and %.0f%% at the prompt: want the kernel's font, then the solid one\n%s", 100*before, 100*after, v.tail(40))
	}
}
