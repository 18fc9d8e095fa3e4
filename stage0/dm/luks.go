package dm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
)

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

var (
	// ErrWrongPassphrase is returned when every try failed.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrHeader is returned when cryptsetup cannot read a container's
	// LUKS header (damaged, or not LUKS after all).
	ErrHeader = errors.New("LUKS header unreadable")
	// ErrNoKeyDevice is returned by a key reader whose key device did not
	// appear in time; the passphrase is asked instead.
	ErrNoKeyDevice = errors.New("key device not found")
)

// Unlocker opens LUKS containers with cryptsetup.
type Unlocker struct {
	Sys        machine.Machine // Run, Ask, Say, ReadFile
	Log        *slog.Logger
	Cryptsetup string // path of the cryptsetup binary
	// ReadKey reads a keyfile; nil reads only keys inside the image
	// (Sys.ReadFile). Errors wrapping ErrNoKeyDevice fall back to the
	// passphrase; others end the unlock.
	ReadKey func(ctx context.Context, k Key) ([]byte, error)
}

// OpenArgs is the cryptsetup command line that opens c with o's flags,
// reading the key from standard input.
func OpenArgs(cryptsetup string, c Container, o Options) []string {
	argv := []string{cryptsetup, "open", "--type", "luks", "--disable-external-tokens", "--disable-locks", "--key-file=-"}
	argv = append(argv, o.Args()...)
	return append(argv, c.Node, c.Name)
}

// CheckArgs is the cryptsetup command line that checks c's LUKS header.
func CheckArgs(cryptsetup string, c Container) []string {
	return []string{cryptsetup, "isLuks", "--verbose", "--disable-locks", c.Node}
}

// Open unlocks c as u says: first with u's keys (a key that does not fit,
// or whose key device is missing, moves on to the next), then with a
// passphrase typed at the console, up to u.Options.Tries times. A
// container whose header cryptsetup cannot read fails at once, before
// any prompt. Keys and passphrases go to cryptsetup on its standard
// input and are never logged; the buffers are cleared after use.
func (un *Unlocker) Open(ctx context.Context, c Container, u Unlock) error {
	if out, code, err := un.Sys.Run(ctx, CheckArgs(un.Cryptsetup, c), Env(), nil); err != nil || code != 0 {
		return fmt.Errorf("%w: cryptsetup cannot read the header of %s (damaged, or overwritten?): %s", ErrHeader, c.describe(), failure(out, code, err))
	}
	if len(u.Options.Args()) > 0 || u.Options.Tries != 0 {
		un.Log.Info("LUKS options", "container", c.describe(), "options", u.Options.String())
	}
	for _, k := range u.Keys {
		done, err := un.tryKey(ctx, c, u, k)
		if done || err != nil {
			return err
		}
	}
	tries := u.Options.Tries
	if tries == 0 {
		tries = 3
	}
	if tries < 0 {
		un.Sys.Say(fmt.Sprintf("%s is locked; enter its passphrase", c.describe()))
	} else {
		un.Sys.Say(fmt.Sprintf("%s is locked; enter its passphrase (%d tries)", c.describe(), tries))
	}
	for i := 1; tries < 0 || i <= tries; i++ {
		pass, err := un.Sys.Ask(ctx, fmt.Sprintf("Passphrase for %s (%s): ", c.UUID, c.Node))
		if err != nil {
			return fmt.Errorf("read the passphrase for %s: %w", c.describe(), err)
		}
		out, code, err := un.Sys.Run(ctx, OpenArgs(un.Cryptsetup, c, u.Options), Env(), pass)
		clear(pass)
		switch {
		case err == nil && code == 0:
			un.Log.Info("unlocked", "container", c.describe(), "name", c.Name)
			return nil
		case err == nil && code == exitWrongKey && tries < 0:
			un.Sys.Say(fmt.Sprintf("wrong passphrase for %s (try %d)", c.describe(), i))
		case err == nil && code == exitWrongKey:
			un.Sys.Say(fmt.Sprintf("wrong passphrase for %s (try %d of %d)", c.describe(), i, tries))
		default:
			return fmt.Errorf("cryptsetup open %s: %s", c.Node, failure(out, code, err))
		}
	}
	return fmt.Errorf("%w for %s after %d tries", ErrWrongPassphrase, c.describe(), tries)
}

// tryKey opens c with the keyfile k. done is true when c is open.
func (un *Unlocker) tryKey(ctx context.Context, c Container, u Unlock, k Key) (done bool, err error) {
	var file []byte
	switch {
	case un.ReadKey != nil:
		file, err = un.ReadKey(ctx, k)
	case k.Device.Kind != cmdline.None:
		err = fmt.Errorf("%w: no reader for key devices", ErrNoKeyDevice)
	default:
		file, err = un.Sys.ReadFile(k.Path)
	}
	defer clear(file)
	switch {
	case errors.Is(err, ErrNoKeyDevice):
		un.Sys.Say(fmt.Sprintf("%s: %v; the keyfile %s cannot be read", k.Origin, err, k))
		return false, nil
	case err != nil && k.Fallback:
		un.Sys.Say(fmt.Sprintf("%s: cannot read the keyfile %s (%v); asking for the passphrase", k.Origin, k, err))
		return false, nil
	case err != nil && k.Device.Kind == cmdline.None:
		return false, fmt.Errorf("%s: cannot read the keyfile %s in the image (add it with --include HOSTFILE:%s): %w", k.Origin, k.Path, k.Path, err)
	case err != nil:
		return false, fmt.Errorf("%s: cannot read the keyfile %s: %w", k.Origin, k, err)
	}
	key, err := u.Options.Key(file)
	if err != nil {
		return false, fmt.Errorf("%s: keyfile %s: %w", k.Origin, k, err)
	}
	un.Log.Info("unlocking with keyfile", "container", c.describe(), "keyfile", k.String(), "from", k.Origin, "name", c.Name)
	out, code, err := un.Sys.Run(ctx, OpenArgs(un.Cryptsetup, c, u.Options), Env(), key)
	switch {
	case err == nil && code == 0:
		un.Log.Info("unlocked", "container", c.describe(), "name", c.Name)
		return true, nil
	case err == nil && code == exitWrongKey:
		un.Sys.Say(fmt.Sprintf("the keyfile %s (%s) does not unlock %s", k, k.Origin, c.describe()))
		return false, nil
	}
	return false, fmt.Errorf("cryptsetup open %s: %s", c.Node, failure(out, code, err))
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
