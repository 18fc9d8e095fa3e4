// Package cli implements the pkginitrd command line. It receives its
// arguments and I/O explicitly so tests run it in-process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/term"
)

// Env is everything a command run needs from the outside world.
type Env struct {
	Args   []string // full argv, Args[0] is the program name
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Executable is the path of the running pkginitrd binary (becomes /init).
	Executable string
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env Env, args []string) error
}

func commands() []command {
	return []command{
		{"build", "build an initramfs image", runBuild},
		{"modules", "list the kernel modules an image would carry and why", runModules},
		{"extend", "append this host's files, modules and settings to a prebuilt image", runExtend},
		{"inspect", "list or extract the segments and files of an initramfs image", runInspect},
		{"config", "print the merged configuration and the files it came from", runConfig},
		{"cache", "clean the package cache", runCache},
		{"boot", "boot an image in qemu on this terminal", runBoot},
		{"kernel-install", "kernel-install(8) plugin: stage the initrd for a new kernel", runKernelInstall},
		{"kernel-hook", "Debian /etc/kernel/postinst.d and postrm.d hook", runKernelHook},
		{"version", "print the pkginitrd version", runVersion},
	}
}

// errUsage marks errors already explained by a usage message.
var errUsage = errors.New("usage")

// exitError makes a command exit with code, printing err unless it is nil.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e exitError) Unwrap() error { return e.err }

// NotifyContext returns a copy of ctx cancelled by SIGINT, SIGTERM or
// SIGHUP (the terminal or ssh session went away): a build then stops and
// removes its temporary files. stop restores the default handling.
func NotifyContext(ctx context.Context) (_ context.Context, stop context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	args := env.Args[1:]
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		var exit exitError
		if errors.As(err, &exit) {
			if exit.err != nil && !errors.Is(exit.err, errUsage) {
				fmt.Fprintf(env.Stderr, "pkginitrd %s: %v\n", c.name, exit.err)
			}
			return exit.code
		}
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		}
		fmt.Fprintf(env.Stderr, "pkginitrd %s: %v\n", c.name, err)
		return 1
	}
	fmt.Fprintf(env.Stderr, "pkginitrd: unknown command %q\n\n", args[0])
	usage(env.Stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "pkginitrd builds initramfs images from the distribution's own packages.\n\nUsage:\n  pkginitrd COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'pkginitrd COMMAND --help' for the flags of a command.\n")
}

// newFlagSet returns a flag set whose --help prints a complete usage text.
func newFlagSet(env Env, name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		out := env.Stdout
		fmt.Fprintf(out, "Usage: pkginitrd %s %s\n\n%s\n\nFlags:\n", name, synopsis, strings.TrimSpace(description))
		fs.SetOutput(out)
		fs.PrintDefaults()
		fs.SetOutput(env.Stderr)
	}
	return fs
}

// parseFlags parses and maps flag errors to errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// newLogger logs to stderr: progress (info) when stderr is a terminal or
// verbose is set, otherwise only warnings and errors.
func newLogger(w io.Writer, verbose, quiet bool) *slog.Logger {
	level := slog.LevelWarn
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		level = slog.LevelInfo
	}
	if verbose {
		level = slog.LevelDebug
	}
	if quiet {
		level = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: dropTime}))
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// Executable is the path of the running binary: os.Executable, or where
// arg0 leads when that fails because /proc is not mounted (dpkg runs the
// kernel hooks in chroots so; they call pkginitrd by its full path).
func Executable(arg0 string) string { return executable(os.Executable, arg0) }

func executable(self func() (string, error), arg0 string) string {
	if p, err := self(); err == nil {
		return p
	}
	if p, err := exec.LookPath(arg0); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	return ""
}

// Version returns the module version or VCS revision the binary was built from.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" && (v == "" || v == "(devel)") {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v = rev
		if settings["vcs.modified"] == "true" {
			v += "-dirty"
		}
	}
	if v == "" {
		v = "(devel)"
	}
	return v
}

func runVersion(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "version", "", "Print the pkginitrd version (module version or VCS revision) and the Go version.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bi, _ := debug.ReadBuildInfo()
	gov := "unknown"
	if bi != nil {
		gov = bi.GoVersion
	}
	fmt.Fprintf(env.Stdout, "pkginitrd %s (%s)\n", Version(), gov)
	return nil
}

// sourceDateEpoch is $SOURCE_DATE_EPOCH, the mtime of every file in the
// image (0 when unset).
func sourceDateEpoch(getenv func(string) string) (int64, error) {
	v := getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want a non-negative number of seconds", v)
	}
	return n, nil
}
