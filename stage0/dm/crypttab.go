package dm

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
)

// CrypttabPath is where stage0 looks for a crypttab inside the image (the
// user adds it with --include /etc/crypttab or the config's include list).
const CrypttabPath = "/etc/crypttab"

// CrypttabEntry is one line of /etc/crypttab (crypttab(5)):
// "NAME DEVICE [KEYFILE [OPTIONS]]".
type CrypttabEntry struct {
	Line   int
	Name   string
	Device cmdline.DeviceRef // UUID=, PARTUUID=, LABEL=, PARTLABEL= or a path
	// Key is the keyfile (systemd's "PATH:KEYDEVICE" puts it on a key
	// device); nil for none or "-": the passphrase is asked.
	Key     *Key
	Options Options
}

// ParseCrypttab reads a crypttab. Lines it cannot use (bad syntax, or
// entries that are not LUKS containers: swap, tmp, plain, TrueCrypt,
// BitLocker) are left out with a warning, as are unsupported options
// (named in the warning; the rest of the line still applies).
func ParseCrypttab(r io.Reader) ([]CrypttabEntry, []string) {
	var out []CrypttabEntry
	var warn []string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := fmt.Sprintf("%s line %d", CrypttabPath, n)
		f := strings.Fields(line)
		if len(f) < 2 || len(f) > 4 {
			warn = append(warn, fmt.Sprintf("%s: want NAME DEVICE [KEYFILE [OPTIONS]], got %d fields; line ignored", where, len(f)))
			continue
		}
		e := CrypttabEntry{Line: n, Name: f[0]}
		if strings.Contains(e.Name, "/") {
			warn = append(warn, fmt.Sprintf("%s: name %q contains a slash; line ignored", where, e.Name))
			continue
		}
		dev, err := cmdline.ParseDeviceRef(f[1])
		if err != nil || dev.Kind == cmdline.None || dev.Kind == cmdline.Live {
			warn = append(warn, fmt.Sprintf("%s: device %q: want UUID=, PARTUUID=, LABEL=, PARTLABEL= or a /dev path; line ignored", where, f[1]))
			continue
		}
		e.Device = dev
		opts := ""
		if len(f) == 4 {
			opts = f[3]
		}
		if t := notLUKS(opts); t != "" {
			warn = append(warn, fmt.Sprintf("%s (%s): a %s entry, not a LUKS container; line ignored", where, e.Name, t))
			continue
		}
		if len(f) >= 3 && f[2] != "none" && f[2] != "-" {
			if strings.HasPrefix(f[2], "/dev/urandom") || strings.HasPrefix(f[2], "/dev/random") {
				warn = append(warn, fmt.Sprintf("%s (%s): a random key is for swap or tmp, not a LUKS container; line ignored", where, e.Name))
				continue
			}
			k, err := splitKey(f[2])
			if err != nil {
				warn = append(warn, fmt.Sprintf("%s (%s): keyfile %q: %v; line ignored", where, e.Name, f[2], err))
				continue
			}
			k.Origin = where
			e.Key = &k
		}
		var unknown []string
		e.Options, unknown = ParseOptions(opts)
		if len(unknown) > 0 {
			warn = append(warn, fmt.Sprintf("%s (%s): options not supported, ignored: %s", where, e.Name, strings.Join(unknown, ",")))
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		warn = append(warn, fmt.Sprintf("read %s: %v", CrypttabPath, err))
	}
	return out, warn
}

// notLUKS returns the kind of a crypttab entry whose options say it is no
// LUKS container, or "".
func notLUKS(opts string) string {
	for _, o := range strings.Split(opts, ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(o), "=")
		switch name {
		case "swap", "tmp", "plain", "tcrypt", "bitlk":
			return name
		}
	}
	return ""
}

// splitKey reads "PATH[:KEYDEVICE[:LUKSDEVICE]]": dracut's rd.luks.key
// value and systemd's crypttab keyfile with a device.
func splitKey(s string) (Key, error) {
	parts := strings.SplitN(s, ":", 3)
	k := Key{Path: parts[0]}
	if !strings.HasPrefix(k.Path, "/") {
		return k, fmt.Errorf("want an absolute path")
	}
	ref := func(s, what string) (cmdline.DeviceRef, error) {
		r, err := cmdline.ParseDeviceRef(s)
		if err == nil && r.Kind == cmdline.Live {
			err = fmt.Errorf("%q is not a block device", s)
		}
		if err != nil {
			return r, fmt.Errorf("%s: %w", what, err)
		}
		return r, nil
	}
	var err error
	if len(parts) > 1 {
		if k.Device, err = ref(parts[1], "key device"); err != nil {
			return k, err
		}
	}
	if len(parts) > 2 {
		if k.ForDevice, err = ref(parts[2], "LUKS device"); err != nil {
			return k, err
		}
	}
	return k, nil
}
