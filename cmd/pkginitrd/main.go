// Command pkginitrd builds initramfs images from distribution packages. The
// same binary is the image's /init: run as PID 1 it becomes stage0.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/pkginitrd/pkginitrd/cli"
	"github.com/pkginitrd/pkginitrd/stage0"
)

func main() {
	if os.Getpid() == 1 {
		os.Exit(stage0.Main(os.Args))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	exe, _ := os.Executable()
	code := cli.Main(ctx, cli.Env{Args: os.Args, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Executable: exe})
	stop()
	os.Exit(code)
}
