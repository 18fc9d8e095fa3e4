package dm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// System is the I/O of activation, replaced in tests.
type System struct {
	// Run runs argv with env added to the environment and stdin as its
	// whole input, and returns its combined output and exit status.
	Run func(ctx context.Context, argv, env []string, stdin []byte) (out []byte, exitCode int, err error)
	// Ask prints prompt on the console and reads one line with echo off
	// (newline removed).
	Ask func(ctx context.Context, prompt string) ([]byte, error)
	// Say prints a line on the console.
	Say func(line string)
	// ReadFile reads a file of the image (the keyfile).
	ReadFile func(path string) ([]byte, error)
	// Mappings lists the active device-mapper devices (see Mappings).
	Mappings func() ([]Mapping, error)
	// Link creates the /dev/mapper and /dev/VG/LV links (see Link).
	Link func(maps []Mapping) error
}

// Container is a LUKS container to open.
type Container struct {
	Node  string // e.g. /dev/vda2
	UUID  string
	Label string // LUKS2 label, if any
	Name  string // device-mapper name to create
}

func (c Container) describe() string {
	s := "LUKS container UUID=" + c.UUID
	if c.Label != "" {
		s += " LABEL=" + c.Label
	}
	return s + " on " + c.Node
}

// cryptsetup exit status for "no key available with this passphrase".
const exitWrongKey = 2

// ErrWrongPassphrase is returned when every try failed.
var ErrWrongPassphrase = errors.New("wrong passphrase")

// Unlocker opens LUKS containers with cryptsetup.
type Unlocker struct {
	Sys        System
	Log        *slog.Logger
	Cryptsetup string // path of the cryptsetup binary
	Tries      int    // passphrase attempts; 0 means 3
}

// OpenArgs is the cryptsetup command line that opens c, reading the key
// from keyFile ("-": standard input).
func OpenArgs(cryptsetup string, c Container, keyFile string) []string {
	return []string{cryptsetup, "open", "--type", "luks", "--disable-external-tokens", "--disable-locks", "--key-file=" + keyFile, c.Node, c.Name}
}

// Open unlocks c: with keyFile when given (falling back to the console if
// the key does not fit), else with a passphrase typed at the console, up to
// Tries times. The passphrase goes to cryptsetup on its standard input and
// is never logged.
func (u *Unlocker) Open(ctx context.Context, c Container, keyFile string) error {
	if keyFile != "" {
		key, err := u.Sys.ReadFile(keyFile)
		if err != nil {
			return fmt.Errorf("rd.luks.key=%s: cannot read the keyfile in the image (add it with --include HOSTFILE:%s): %w", keyFile, keyFile, err)
		}
		u.Log.Info("unlocking with keyfile", "container", c.describe(), "keyfile", keyFile, "name", c.Name)
		out, code, err := u.Sys.Run(ctx, OpenArgs(u.Cryptsetup, c, "-"), Env(), key)
		switch {
		case err == nil && code == 0:
			return nil
		case err == nil && code == exitWrongKey:
			u.Sys.Say(fmt.Sprintf("the keyfile %s does not unlock %s; asking for the passphrase", keyFile, c.describe()))
		default:
			return fmt.Errorf("cryptsetup open %s: %s", c.Node, failure(out, code, err))
		}
	}
	tries := u.Tries
	if tries <= 0 {
		tries = 3
	}
	u.Sys.Say(fmt.Sprintf("%s is locked; enter its passphrase (%d tries)", c.describe(), tries))
	for i := 1; i <= tries; i++ {
		pass, err := u.Sys.Ask(ctx, fmt.Sprintf("Passphrase for %s (%s): ", c.UUID, c.Node))
		if err != nil {
			return fmt.Errorf("read the passphrase for %s: %w", c.describe(), err)
		}
		out, code, err := u.Sys.Run(ctx, OpenArgs(u.Cryptsetup, c, "-"), Env(), pass)
		clear(pass)
		switch {
		case err == nil && code == 0:
			u.Log.Info("unlocked", "container", c.describe(), "name", c.Name)
			return nil
		case err == nil && code == exitWrongKey:
			u.Sys.Say(fmt.Sprintf("wrong passphrase for %s (try %d of %d)", c.describe(), i, tries))
		default:
			return fmt.Errorf("cryptsetup open %s: %s", c.Node, failure(out, code, err))
		}
	}
	return fmt.Errorf("%w for %s after %d tries", ErrWrongPassphrase, c.describe(), tries)
}

func failure(out []byte, code int, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("exit status %d: %s", code, trim(out))
}

func trim(b []byte) string {
	s := string(b)
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}
