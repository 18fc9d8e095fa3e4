package stage0

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pkginitrd/pkginitrd/internal/kmod"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/bootlog"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
	"github.com/pkginitrd/pkginitrd/stage0/modload"
	"github.com/pkginitrd/pkginitrd/stage0/mount"
	"github.com/pkginitrd/pkginitrd/stage0/reaper"
)

// Main runs the boot. It returns (with status 2) only when the process is
// not PID 1; as PID 1 it ends by exec'ing the real init, or, if everything
// failed and there is no shell, by halting (or waiting forever), because
// PID 1 exiting panics the kernel.
func Main(args []string) int {
	if os.Getpid() != 1 {
		name := "init"
		if len(args) > 0 {
			name = args[0]
		}
		fmt.Fprintf(os.Stderr, "%s: pkginitrd stage0 runs only as PID 1, the /init of an initramfs\n", name)
		return 2
	}
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "pkginitrd: internal error: %v\n%s\npkginitrd: cannot continue; reboot the machine\n", r, debug.Stack())
			hang()
		}
	}()
	ctx := context.Background()
	var r reaper.Reaper
	r.Start(ctx)
	level := new(slog.LevelVar)
	h := bootlog.New(os.Stderr, level, bootlog.Uptime)
	log := slog.New(h)
	ignoreSignals(log)
	err := bootMain(ctx, LinuxMachine(&r), log, h, level)
	fmt.Fprintf(os.Stderr, "pkginitrd: %v\npkginitrd: cannot continue; reboot the machine\n", err)
	hang()
	return 1
}

// ignoreSignals catches the signals whose default action would end PID 1
// (and with it the kernel): `kill 1` from the shell, Ctrl-Alt-Del's SIGINT.
// They are caught, not set to SIG_IGN, because ignored dispositions survive
// exec and would reach the shell and the real init.
func ignoreSignals(log *slog.Logger) {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPIPE)
	go func() {
		for s := range sigs {
			log.Warn("PID 1 ignores signal", "signal", s.String())
		}
	}()
}

// hang keeps PID 1 alive (sleeping, so the runtime never sees a deadlock).
func hang() {
	for {
		time.Sleep(time.Hour)
	}
}

// bootMain is Main after the PID check: early mounts, log file, command
// line, config, then the plan, all through sys. It returns only if the
// boot ended without a shell to fall back to.
func bootMain(ctx context.Context, sys machine.Machine, log *slog.Logger, h *bootlog.Handler, level *slog.LevelVar) error {
	version := "(unknown)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
	}
	// Read the command line first, so `quiet` and `rd.debug` apply from
	// the first line on: /proc is mounted (again, harmlessly, by the
	// early plan) just for that.
	var procCmdline string
	if err := sys.Mount(mount.API()[0]); err != nil {
		log.Error("cannot mount /proc", "err", err)
	} else if b, err := sys.ReadFile("/proc/cmdline"); err != nil {
		log.Error("cannot read the kernel command line; using defaults", "err", err)
	} else {
		procCmdline = string(b)
	}
	cmd := cmdline.Parse(procCmdline)
	setLevel(level, cmd)
	log.Info("pkginitrd stage0 starting", "version", version)
	for _, w := range cmd.Warnings {
		log.Warn("kernel command line: ignored", "problem", w)
	}
	for _, hook := range cmd.Break {
		if !supportedBreak(hook) {
			log.Warn("rd.break hook not supported; use rd.break (before switch_root) or rd.break=pre-mount", "hook", hook)
		}
	}

	loader := modload.New(modload.Config{Index: kmod.NewIndex(kmod.IndexFiles{}), Sys: sys, Log: log})
	b := newBoot(sys, log, h.Report, cmd, &bootconf.Config{}, bootSettings{Timeout: cmd.Timeout}, loader)
	if err := b.run(ctx, earlyMounts(), 0); err != nil {
		return err
	}
	f, err := sys.Append(logPath)
	if err == nil {
		err = h.SetFile(f)
	}
	if err != nil {
		log.Warn("no boot log file", "path", logPath, "err", err)
	}

	release, _ := sys.Uname() // unknown: no version check, no default module directory
	conf := readConfig(sys, log, release)
	if len(conf.Cmdline) > 0 {
		// The image's words first, so the real command line wins.
		cmd = cmdline.Parse(strings.Join(conf.Cmdline, " ") + " " + procCmdline)
		setLevel(level, cmd)
		log.Info("image configuration adds kernel command line words", "words", strings.Join(conf.Cmdline, " "))
	}
	if conf.KernelVersion != "" && release != "" && conf.KernelVersion != release {
		log.Error("this initrd was built for another kernel: its modules will not load; rebuild it for the running kernel (pkginitrd build --kernel-version "+release+")",
			"built_for", conf.KernelVersion, "running", release)
	}
	index, err := kmod.ReadIndex(conf.ModulesDir)
	if err != nil {
		log.Error("no module index: only built-in drivers are available", "err", err)
		index = kmod.NewIndex(kmod.IndexFiles{})
	}
	set, err := settings(cmd, conf)
	if err != nil {
		log.Error("bad root setting", "err", err)
	}
	loader = modload.New(modload.Config{
		Index:       index,
		Dir:         conf.ModulesDir,
		Sys:         sys,
		Log:         log,
		Params:      cmd.ModuleOptions,
		Blacklisted: cmd.Blacklisted,
	})
	b = newBoot(sys, log, h.Report, cmd, conf, set, loader)
	steps, retryFrom := plan(set, cmd)
	var lines []string
	for i, s := range steps {
		lines = append(lines, fmt.Sprintf("  %d. %s", i+1, s))
	}
	log.Debug("boot plan:\n" + strings.Join(lines, "\n"))
	return b.run(ctx, steps, retryFrom)
}

// setLevel applies quiet and rd.debug to the log level.
func setLevel(level *slog.LevelVar, cmd *cmdline.CmdLine) {
	switch {
	case cmd.Debug:
		level.Set(slog.LevelDebug)
	case cmd.Quiet:
		level.Set(slog.LevelWarn)
	}
}

// readConfig reads the image config and applies its extension (added by
// `pkginitrd extend`); without one the boot goes on with
// defaults, since a shell is better than a panic.
func readConfig(sys machine.Machine, log *slog.Logger, release string) *bootconf.Config {
	conf := &bootconf.Config{}
	b, err := sys.ReadFile("/" + bootconf.Path)
	if err == nil {
		var c *bootconf.Config
		if c, err = bootconf.Parse(bytes.NewReader(b)); err == nil {
			conf = c
		}
	}
	if err != nil {
		log.Error("no usable image config; using defaults", "path", "/"+bootconf.Path, "err", err)
	}
	if b, err := sys.ReadFile("/" + bootconf.ExtensionPath); err == nil {
		ext, err := bootconf.ParseExtension(bytes.NewReader(b))
		if err != nil {
			log.Error("image extension ignored", "path", "/"+bootconf.ExtensionPath, "err", err)
		} else {
			conf.Extend(*ext)
		}
	}
	if conf.ModulesDir == "" && release != "" {
		conf.ModulesDir = "/usr/lib/modules/" + release
	}
	return conf
}
