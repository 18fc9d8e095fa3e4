// Command pkginitrd builds initramfs images from distribution packages. The
// same binary is the image's /init: run as PID 1 it becomes stage0, and
// run as PID 1 named shutdown it is stage0's shutdown side.
package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/pkginitrd/pkginitrd/cmd/pkginitrd/internal/cli"
	"github.com/pkginitrd/pkginitrd/stage0"
)

func main() {
	if os.Getpid() == 1 {
		// systemd-shutdown execs the copy in /run/initramfs as /shutdown.
		if len(os.Args) > 0 && filepath.Base(os.Args[0]) == "shutdown" {
			os.Exit(stage0.Shutdown(os.Args))
		}
		os.Exit(stage0.Main(os.Args))
	}
	ctx, stop := cli.NotifyContext(context.Background())
	code := cli.Main(ctx, cli.Env{Args: os.Args, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Executable: cli.Executable(os.Args[0])})
	stop()
	os.Exit(code)
}
