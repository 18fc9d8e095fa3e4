// Package bootlog is stage0's log/slog handler: kernel-style lines with the
// time since boot, "[    1.234567] pkginitrd: message key=value", written
// to the console (filtered by level, so `quiet` shows only warnings and
// errors) and, unfiltered, to a log file such as /run/initramfs/boot.log.
// Lines logged before the file exists are kept and written when it is set.
package bootlog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// maxPending bounds what is kept for the log file before it is opened.
const maxPending = 1 << 20

// Handler is a slog.Handler; see the package comment. Handlers derived with
// WithAttrs and WithGroup share the outputs.
type Handler struct {
	out    *outputs
	attrs  string // preformatted " k=v" of WithAttrs
	prefix string // group prefix for keys, "g1.g2."
}

type outputs struct {
	mu      sync.Mutex
	console io.Writer
	level   slog.Leveler
	file    io.Writer
	pending []byte
	uptime  func() time.Duration
}

// New returns a Handler writing records at level or above to console, and
// every record to the log file once SetFile is called. uptime gives the
// timestamp (time since boot, Uptime on Linux).
func New(console io.Writer, level slog.Leveler, uptime func() time.Duration) *Handler {
	return &Handler{out: &outputs{console: console, level: level, uptime: uptime}}
}

// SetFile starts writing to w, first writing what was logged so far.
func (h *Handler) SetFile(w io.Writer) error {
	o := h.out
	o.mu.Lock()
	defer o.mu.Unlock()
	o.file = w
	_, err := w.Write(o.pending)
	o.pending = nil
	if err != nil {
		return fmt.Errorf("bootlog: write log file: %w", err)
	}
	return nil
}

// Report writes a block of text, line by line with timestamps, to the
// console whatever the level, and to the log file: for the emergency
// report and the shell banner.
func (h *Handler) Report(text string) {
	o := h.out
	o.mu.Lock()
	defer o.mu.Unlock()
	stamp := timestamp(o.uptime())
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString(stamp + "pkginitrd: " + line + "\n")
	}
	_ = o.write([]byte(b.String()), true) // a log line that cannot be written is dropped
}

// Enabled reports true for every level: the log file gets everything.
func (h *Handler) Enabled(context.Context, slog.Level) bool { return true }

// Handle formats and writes one record.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	o := h.out
	var b strings.Builder
	b.WriteString(timestamp(o.uptime()))
	b.WriteString("pkginitrd: ")
	switch {
	case r.Level >= slog.LevelError:
		b.WriteString("error: ")
	case r.Level >= slog.LevelWarn:
		b.WriteString("warning: ")
	case r.Level < slog.LevelInfo:
		b.WriteString("debug: ")
	}
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.prefix, a)
		return true
	})
	b.WriteByte('\n')
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.write([]byte(b.String()), r.Level >= o.level.Level())
}

// write sends line to the file (or pending) and, if toConsole, to the
// console. Console errors are ignored: there is nowhere to report them.
func (o *outputs) write(line []byte, toConsole bool) error {
	if toConsole && o.console != nil {
		_, _ = o.console.Write(line)
	}
	if o.file == nil {
		if len(o.pending)+len(line) <= maxPending {
			o.pending = append(o.pending, line...)
		}
		return nil
	}
	if _, err := o.file.Write(line); err != nil {
		return fmt.Errorf("bootlog: %w", err)
	}
	return nil
}

// WithAttrs returns a handler that adds attrs to every record.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		appendAttr(&b, h.prefix, a)
	}
	return &Handler{out: h.out, attrs: b.String(), prefix: h.prefix}
}

// WithGroup returns a handler that qualifies later keys with name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &Handler{out: h.out, attrs: h.attrs, prefix: h.prefix + name + "."}
}

// timestamp formats d like the kernel's printk time: "[    1.234567] ".
func timestamp(d time.Duration) string {
	us := d.Microseconds()
	return fmt.Sprintf("[%5d.%06d] ", us/1e6, us%1e6)
}

func appendAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			appendAttr(b, p, g)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(prefix + a.Key)
	b.WriteByte('=')
	b.WriteString(quote(a.Value.String()))
}

// quote leaves simple values bare and quotes the rest Go-style.
func quote(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if unicode.IsSpace(r) || r == '"' || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

var _ slog.Handler = (*Handler)(nil)
