package bootlog

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func fixedClock(d time.Duration) func() time.Duration { return func() time.Duration { return d } }

func TestHandlerLevelsAndFile(t *testing.T) {
	var console, file bytes.Buffer
	level := new(slog.LevelVar)
	h := New(&console, level, fixedClock(1234567*time.Microsecond))
	log := slog.New(h)

	log.Info("mounted", "target", "/proc")
	level.Set(slog.LevelWarn) // "quiet" after the command line is read
	log.Debug("scan", "devices", 3)
	log.Info("loaded module", "module", "virtio_blk", "took", 3*time.Millisecond)
	log.Warn("module failed to load", "module", "nouveau", "err", errors.New("Unknown symbol in module"))
	if err := h.SetFile(&file); err != nil {
		t.Fatal(err)
	}
	log.With("step", "wait").WithGroup("root").Error("timed out", "spec", "UUID=1234", "label", "my root")
	h.Report("block devices:\n  vda (254:0)\n")

	wantConsole := `[    1.234567] pkginitrd: mounted target=/proc
[    1.234567] pkginitrd: warning: module failed to load module=nouveau err="Unknown symbol in module"
[    1.234567] pkginitrd: error: timed out step=wait root.spec=UUID=1234 root.label="my root"
[    1.234567] pkginitrd: block devices:
[    1.234567] pkginitrd:   vda (254:0)
`
	wantFile := `[    1.234567] pkginitrd: mounted target=/proc
[    1.234567] pkginitrd: debug: scan devices=3
[    1.234567] pkginitrd: loaded module module=virtio_blk took=3ms
[    1.234567] pkginitrd: warning: module failed to load module=nouveau err="Unknown symbol in module"
[    1.234567] pkginitrd: error: timed out step=wait root.spec=UUID=1234 root.label="my root"
[    1.234567] pkginitrd: block devices:
[    1.234567] pkginitrd:   vda (254:0)
`
	if console.String() != wantConsole {
		t.Errorf("console =\n%s\nwant\n%s", console.String(), wantConsole)
	}
	if file.String() != wantFile {
		t.Errorf("file =\n%s\nwant\n%s", file.String(), wantFile)
	}
}

func TestTimestamp(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                     "[    0.000000] ",
		1500 * time.Millisecond:               "[    1.500000] ",
		123456*time.Second + time.Microsecond: "[123456.000001] ",
	} {
		if got := timestamp(d); got != want {
			t.Errorf("timestamp(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestConcurrent(t *testing.T) {
	var file bytes.Buffer
	h := New(nil, slog.LevelInfo, Uptime)
	if err := h.SetFile(&file); err != nil {
		t.Fatal(err)
	}
	log := slog.New(h)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				log.Info("event", "j", j)
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(file.String(), "\n"); n != 800 {
		t.Errorf("wrote %d lines, want 800", n)
	}
	for _, line := range strings.Split(strings.TrimSpace(file.String()), "\n") {
		if !strings.HasPrefix(line, "[") || !strings.Contains(line, "] pkginitrd: event j=") {
			t.Fatalf("interleaved or malformed line %q", line)
		}
	}
}

func TestAttrFormatting(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  func(l *slog.Logger)
		want string
	}{
		{"empty attr dropped", func(l *slog.Logger) { l.Info("m", slog.Attr{}, "a", 1) }, "m a=1"},
		{"inline group", func(l *slog.Logger) { l.Info("m", slog.Group("", "a", 1, "b", 2)) }, "m a=1 b=2"},
		{"nested group", func(l *slog.Logger) { l.Info("m", slog.Group("dev", "name", "vda", slog.Group("fs", "type", "ext4"))) }, "m dev.name=vda dev.fs.type=ext4"},
		{"empty WithGroup", func(l *slog.Logger) { l.WithGroup("").Info("m", "a", "") }, `m a=""`},
		{"group then attrs", func(l *slog.Logger) { l.WithGroup("g").With("x", 1).Info("m", "y", "a\tb") }, `m g.x=1 g.y="a\tb"`},
		{"values", func(l *slog.Logger) { l.Info("m", "list", []string{"a", "b"}, "q", `say "hi"`) }, `m list="[a b]" q="say \"hi\""`},
	} {
		var buf bytes.Buffer
		h := New(&buf, slog.LevelInfo, fixedClock(0))
		tc.log(slog.New(h))
		got := strings.TrimSuffix(strings.TrimPrefix(buf.String(), "[    0.000000] pkginitrd: "), "\n")
		if got != tc.want {
			t.Errorf("%s: logged %q, want %q", tc.name, got, tc.want)
		}
	}
}
