package dm

import (
	"fmt"
	"strconv"
	"strings"
)

// Options are the crypttab-style options of one LUKS container, from
// /etc/crypttab's fourth field or rd.luks.options=.
type Options struct {
	Discard  bool // discard: pass TRIM down (cryptsetup --allow-discards)
	ReadOnly bool // readonly, read-only: a read-only mapping
	// Tries is the number of passphrase attempts (tries=N): 0 means the
	// default (3), negative means until the right one (crypttab's tries=0).
	Tries int
	// KeyfileOffset and KeyfileSize select the part of the keyfile that is
	// the key (keyfile-offset=, keyfile-size=; size 0 = to the end).
	KeyfileOffset, KeyfileSize int64
	// Perf are cryptsetup's --perf-* flags (same-cpu-crypt, no-read-workqueue, …).
	Perf []string
	// NoAuto (noauto): unlocked only when rd.luks.uuid= or root= names
	// the container, not when stage0 opens every container it sees.
	NoAuto bool
}

// perfOptions maps crypttab's performance options to cryptsetup flags.
func perfOptions() map[string]string {
	return map[string]string{
		"same-cpu-crypt":         "--perf-same_cpu_crypt",
		"submit-from-crypt-cpus": "--perf-submit_from_crypt_cpus",
		"no-read-workqueue":      "--perf-no_read_workqueue",
		"no-write-workqueue":     "--perf-no_write_workqueue",
	}
}

// ignoredOption reports crypttab options that mean nothing to an initrd
// unlocking a LUKS container: the type (luks), boot ordering (nofail,
// auto, _netdev, x-systemd.*) and Debian's initramfs marker.
func ignoredOption(name string) bool {
	switch name {
	case "luks", "nofail", "auto", "_netdev", "initramfs", "force":
		return true
	}
	return strings.HasPrefix(name, "x-systemd.") || strings.HasPrefix(name, "x-initrd.")
}

// ParseOptions reads a comma-separated crypttab option list ("-" and
// "none" are empty lists). unknown lists the options it does not support,
// for a warning naming them; they are otherwise ignored.
func ParseOptions(s string) (o Options, unknown []string) {
	s = strings.TrimSpace(s)
	if s == "" || s == "-" || s == "none" {
		return o, nil
	}
	perf := perfOptions()
	for _, opt := range strings.Split(s, ",") {
		opt = strings.TrimSpace(opt)
		if opt == "" {
			continue
		}
		name, val, hasVal := strings.Cut(opt, "=")
		num := func() (int64, bool) {
			n, err := strconv.ParseInt(val, 10, 64)
			return n, hasVal && err == nil && n >= 0
		}
		switch {
		case name == "discard" || name == "allow-discards":
			o.Discard = true
		case name == "readonly" || name == "read-only":
			o.ReadOnly = true
		case name == "noauto":
			o.NoAuto = true
		case name == "tries":
			n, ok := num()
			if !ok {
				unknown = append(unknown, opt)
				continue
			}
			o.Tries = int(n)
			if n == 0 {
				o.Tries = -1
			}
		case name == "keyfile-offset":
			n, ok := num()
			if !ok {
				unknown = append(unknown, opt)
				continue
			}
			o.KeyfileOffset = n
		case name == "keyfile-size":
			n, ok := num()
			if !ok {
				unknown = append(unknown, opt)
				continue
			}
			o.KeyfileSize = n
		case perf[name] != "" && !hasVal:
			o.Perf = append(o.Perf, perf[name])
		case ignoredOption(name):
		default:
			unknown = append(unknown, opt)
		}
	}
	return o, unknown
}

// Args returns the cryptsetup open flags the options ask for.
func (o Options) Args() []string {
	var a []string
	if o.Discard {
		a = append(a, "--allow-discards")
	}
	if o.ReadOnly {
		a = append(a, "--readonly")
	}
	return append(a, o.Perf...)
}

// Key cuts the key out of a keyfile's contents as keyfile-offset= and
// keyfile-size= say.
func (o Options) Key(file []byte) ([]byte, error) {
	if o.KeyfileOffset > int64(len(file)) {
		return nil, fmt.Errorf("keyfile-offset=%d is past the end of the %d-byte keyfile", o.KeyfileOffset, len(file))
	}
	k := file[o.KeyfileOffset:]
	if o.KeyfileSize > 0 {
		if o.KeyfileSize > int64(len(k)) {
			return nil, fmt.Errorf("keyfile-size=%d: the keyfile has only %d bytes after offset %d", o.KeyfileSize, len(k), o.KeyfileOffset)
		}
		k = k[:o.KeyfileSize]
	}
	return k, nil
}

// String renders the options as a crypttab option list, for logs.
func (o Options) String() string {
	var s []string
	if o.Discard {
		s = append(s, "discard")
	}
	if o.ReadOnly {
		s = append(s, "readonly")
	}
	if o.NoAuto {
		s = append(s, "noauto")
	}
	if o.Tries != 0 {
		n := o.Tries
		if n < 0 {
			n = 0
		}
		s = append(s, fmt.Sprintf("tries=%d", n))
	}
	if o.KeyfileOffset != 0 {
		s = append(s, fmt.Sprintf("keyfile-offset=%d", o.KeyfileOffset))
	}
	if o.KeyfileSize != 0 {
		s = append(s, fmt.Sprintf("keyfile-size=%d", o.KeyfileSize))
	}
	for _, p := range o.Perf {
		for name, flag := range perfOptions() {
			if flag == p {
				s = append(s, name)
			}
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}
