package kmod

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Names of the files in a module directory (/usr/lib/modules/KVER).
const (
	DepFile            = "modules.dep"
	AliasFile          = "modules.alias"
	SoftDepFile        = "modules.softdep"
	WeakDepFile        = "modules.weakdep"
	BuiltinFile        = "modules.builtin"
	BuiltinModInfoFile = "modules.builtin.modinfo"
	OrderFile          = "modules.order"
)

const (
	maxLine             = 1 << 20
	commentAliases      = "# Aliases extracted from modules themselves.\n"
	commentSoftDeps     = "# Soft dependencies extracted from modules themselves.\n"
	commentWeakDeps     = "# Weak dependencies extracted from modules themselves.\n"
	errLineFmt          = "%s line %d: %w"
	errMalformedLineFmt = "malformed line %q"
)

// Dep is one line of modules.dep: a module path relative to the module
// directory and the paths of all modules it needs, transitively, listed so
// that loading them from last to first works.
type Dep struct {
	Path string
	Deps []string
}

// Alias is one line of modules.alias: an fnmatch pattern and the module
// (normalized name) it belongs to.
type Alias struct {
	Pattern, Module string
}

// SoftDep is one line of modules.softdep: names to load before and after
// Module when it is loaded. Names may be module names or aliases.
type SoftDep struct {
	Module    string
	Pre, Post []string
}

// WeakDep is one line of modules.weakdep: names Module may request at run time.
type WeakDep struct {
	Module string
	Deps   []string
}

// eachLine calls fn with every non-empty, non-comment line of r (trimmed)
// and its 1-based number.
func eachLine(r io.Reader, file string, fn func(line string, n int) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if err := fn(line, n); err != nil {
			return fmt.Errorf(errLineFmt, file, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// ParseDep parses modules.dep.
func ParseDep(r io.Reader) ([]Dep, error) {
	var out []Dep
	err := eachLine(r, DepFile, func(line string, _ int) error {
		p, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(p) == "" {
			return fmt.Errorf(errMalformedLineFmt, line)
		}
		d := Dep{Path: strings.TrimSpace(p)}
		if deps := strings.Fields(rest); len(deps) > 0 {
			d.Deps = deps
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

// WriteDep writes modules.dep.
func WriteDep(w io.Writer, deps []Dep) error {
	bw := bufio.NewWriter(w)
	for _, d := range deps {
		bw.WriteString(d.Path)
		bw.WriteByte(':')
		for _, p := range d.Deps {
			bw.WriteByte(' ')
			bw.WriteString(p)
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// ParseAlias parses modules.alias ("alias PATTERN module" lines; other
// commands are ignored, as modprobe would treat them as configuration).
func ParseAlias(r io.Reader) ([]Alias, error) {
	var out []Alias
	err := eachLine(r, AliasFile, func(line string, _ int) error {
		f := strings.Fields(line)
		if f[0] != "alias" {
			return nil
		}
		if len(f) != 3 {
			return fmt.Errorf(errMalformedLineFmt, line)
		}
		out = append(out, Alias{Pattern: f[1], Module: Normalize(f[2])})
		return nil
	})
	return out, err
}

// WriteAlias writes modules.alias.
func WriteAlias(w io.Writer, aliases []Alias) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(commentAliases)
	for _, a := range aliases {
		fmt.Fprintf(bw, "alias %s %s\n", a.Pattern, a.Module)
	}
	return bw.Flush()
}

// ParseSoftDep parses modules.softdep ("softdep module pre: a post: b").
// A module may have several lines; they are returned as they come.
func ParseSoftDep(r io.Reader) ([]SoftDep, error) {
	var out []SoftDep
	err := eachLine(r, SoftDepFile, func(line string, _ int) error {
		f := strings.Fields(line)
		if f[0] != "softdep" {
			return nil
		}
		if len(f) < 2 {
			return fmt.Errorf(errMalformedLineFmt, line)
		}
		pre, post := ParseSoftDepValue(strings.Join(f[2:], " "))
		out = append(out, SoftDep{Module: Normalize(f[1]), Pre: pre, Post: post})
		return nil
	})
	return out, err
}

// WriteSoftDep writes modules.softdep, one line per entry. Lines without
// names are skipped. kmod's modprobe honours only the first line of a
// module, so callers should merge a module's soft dependencies into one.
func WriteSoftDep(w io.Writer, deps []SoftDep) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(commentSoftDeps)
	for _, d := range deps {
		if len(d.Pre)+len(d.Post) == 0 {
			continue
		}
		fmt.Fprintf(bw, "softdep %s %s\n", d.Module, FormatSoftDepValue(d.Pre, d.Post))
	}
	return bw.Flush()
}

// ParseWeakDep parses modules.weakdep ("weakdep module name…").
func ParseWeakDep(r io.Reader) ([]WeakDep, error) {
	var out []WeakDep
	err := eachLine(r, WeakDepFile, func(line string, _ int) error {
		f := strings.Fields(line)
		if f[0] != "weakdep" {
			return nil
		}
		if len(f) < 3 {
			return fmt.Errorf(errMalformedLineFmt, line)
		}
		out = append(out, WeakDep{Module: Normalize(f[1]), Deps: f[2:]})
		return nil
	})
	return out, err
}

// WriteWeakDep writes modules.weakdep, one line per name as depmod does.
func WriteWeakDep(w io.Writer, deps []WeakDep) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(commentWeakDeps)
	for _, d := range deps {
		for _, n := range d.Deps {
			fmt.Fprintf(bw, "weakdep %s %s\n", d.Module, n)
		}
	}
	return bw.Flush()
}

// ParseList parses a file with one module path per line: modules.builtin
// and modules.order.
func ParseList(r io.Reader) ([]string, error) {
	var out []string
	err := eachLine(r, "module list", func(line string, _ int) error {
		out = append(out, line)
		return nil
	})
	return out, err
}

// WriteList writes one path per line (modules.builtin, modules.order).
func WriteList(w io.Writer, paths []string) error {
	bw := bufio.NewWriter(w)
	for _, p := range paths {
		bw.WriteString(p)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// ParseBuiltinModInfo parses modules.builtin.modinfo: NUL-separated
// "module.key=value" records. Malformed records are skipped.
func ParseBuiltinModInfo(data []byte) []Field {
	var out []Field
	for _, rec := range bytes.Split(data, []byte{0}) {
		kv, v, ok := bytes.Cut(rec, []byte{'='})
		if !ok {
			continue
		}
		mod, k, ok := bytes.Cut(kv, []byte{'.'})
		if !ok || len(mod) == 0 || len(k) == 0 {
			continue
		}
		out = append(out, Field{Module: Normalize(string(mod)), Key: string(k), Value: string(v)})
	}
	return out
}

// WriteBuiltinModInfo writes modules.builtin.modinfo records.
func WriteBuiltinModInfo(w io.Writer, fields []Field) error {
	bw := bufio.NewWriter(w)
	for _, f := range fields {
		bw.WriteString(f.Module)
		bw.WriteByte('.')
		bw.WriteString(f.Key)
		bw.WriteByte('=')
		bw.WriteString(f.Value)
		bw.WriteByte(0)
	}
	return bw.Flush()
}

// BuiltinInfos groups modules.builtin.modinfo records by module.
func BuiltinInfos(fields []Field) map[string]ModInfo {
	out := map[string]ModInfo{}
	for _, f := range fields {
		mi := out[f.Module]
		mi.Name = f.Module
		mi.add(f.Key, f.Value)
		out[f.Module] = mi
	}
	return out
}
