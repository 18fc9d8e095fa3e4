package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pkginitrd/pkginitrd/image"
	"github.com/pkginitrd/pkginitrd/image/cpio"
	"github.com/pkginitrd/pkginitrd/image/diff"
)

// runDiff prints what differs between images a and b; the exit status
// is 0 when nothing does, 1 when something does and 2 on error.
func runDiff(ctx context.Context, env Env, a, b string) error {
	var imgs [2]*diff.Image
	for i, p := range []string{a, b} {
		img, err := loadImage(ctx, p)
		if err != nil {
			return exitError{2, fmt.Errorf("diff %s: %w", p, err)}
		}
		imgs[i] = img
	}
	res := diff.Compare(imgs[0], imgs[1])
	if err := printDiff(env.Stdout, res); err != nil {
		return exitError{2, err}
	}
	if !res.Same() {
		return exitError{code: 1}
	}
	return nil
}

func loadImage(ctx context.Context, path string) (*diff.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return diff.Load(ctx, f, info.Size())
}

// printDiff prints one line per difference: files, then packages,
// modules and build options (each sorted by name).
func printDiff(w io.Writer, r *diff.Result) error {
	ew := &errWriter{w: w}
	for _, c := range r.Files {
		switch c.Kind() {
		case "added":
			ew.printf("+ %s  %s\n", c.Path, describeFile(c.New))
		case "removed":
			ew.printf("- %s  %s\n", c.Path, describeFile(c.Old))
		default:
			var parts []string
			for _, f := range c.Fields {
				parts = append(parts, fmt.Sprintf("%s %s -> %s", f, fileField(c.Old, f), fileField(c.New, f)))
			}
			ew.printf("~ %s  %s\n", c.Path, strings.Join(parts, ", "))
		}
	}
	for _, sec := range []struct {
		title   string
		changes []diff.Change
	}{{"package", r.Packages}, {"module", r.Modules}, {"build", r.Build}} {
		for _, c := range sec.changes {
			switch {
			case c.Old == "":
				ew.printf("+ %s %s  %s\n", sec.title, c.Name, c.New)
			case c.New == "":
				ew.printf("- %s %s  %s\n", sec.title, c.Name, c.Old)
			default:
				ew.printf("~ %s %s  %s -> %s\n", sec.title, c.Name, c.Old, c.New)
			}
		}
	}
	return ew.err
}

// describeFile summarises an added or removed file like 'ls -l'.
func describeFile(f *image.File) string {
	s := fmt.Sprintf("%s %d:%d", modeString(cpio.Header{Mode: f.Mode}), f.UID, f.GID)
	switch f.Mode & cpio.TypeMask {
	case cpio.TypeReg:
		s += fmt.Sprintf(" %d sha256 %s", f.Size, f.SHA256)
	case cpio.TypeSymlink:
		s += " -> " + f.Linkname
	case cpio.TypeChar, cpio.TypeBlock:
		s += fmt.Sprintf(" (%d,%d)", f.RdevMajor, f.RdevMinor)
	}
	return s
}

// fileField is the value of one attribute diff compares.
func fileField(f *image.File, field string) string {
	switch field {
	case diff.FieldType:
		return typeName(f.Mode)
	case diff.FieldMode:
		return fmt.Sprintf("%04o", f.Mode&^cpio.TypeMask)
	case diff.FieldOwner:
		return fmt.Sprintf("%d:%d", f.UID, f.GID)
	case diff.FieldSize:
		return fmt.Sprint(f.Size)
	case diff.FieldHash:
		return f.SHA256
	case diff.FieldTarget:
		return f.Linkname
	case diff.FieldDevice:
		return fmt.Sprintf("%d,%d", f.RdevMajor, f.RdevMinor)
	}
	return "?"
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

func typeName(mode uint32) string {
	switch mode & cpio.TypeMask {
	case cpio.TypeReg:
		return "file"
	case cpio.TypeDir:
		return "directory"
	case cpio.TypeSymlink:
		return "symlink"
	case cpio.TypeChar:
		return "char-device"
	case cpio.TypeBlock:
		return "block-device"
	case cpio.TypeFifo:
		return "fifo"
	case cpio.TypeSocket:
		return "socket"
	}
	return fmt.Sprintf("type-%o", mode&cpio.TypeMask)
}
