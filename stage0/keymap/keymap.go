// Package keymap loads a console keymap compiled at image build time by
// `loadkeys -b` (the "bkeymap" format busybox's loadkmap also reads) into
// the kernel's keyboard tables, so that a passphrase is typed with the
// user's layout. The format holds the key tables only: function-key
// strings and the dead-key/compose table stay the kernel's defaults.
package keymap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Format constants of "loadkeys -b" output: the magic, one flag byte for
// each of the kernel's MAX_NR_KEYMAPS modifier tables, then for each
// flagged table Keys little-endian 16-bit key values (kbentry.kb_value).
const (
	Magic  = "bkeymap"
	Tables = 256
	Keys   = 128
)

// ErrFormat is returned for data that is not a binary keymap.
var ErrFormat = errors.New("keymap: not a binary keymap (loadkeys -b output)")

// Map is a parsed binary keymap: the modifier tables it defines.
type Map struct {
	Tables map[uint8][Keys]uint16
}

// Parse reads a binary keymap.
func Parse(data []byte) (*Map, error) {
	if !bytes.HasPrefix(data, []byte(Magic)) || len(data) < len(Magic)+Tables {
		return nil, ErrFormat
	}
	flags := data[len(Magic) : len(Magic)+Tables]
	rest := data[len(Magic)+Tables:]
	m := &Map{Tables: map[uint8][Keys]uint16{}}
	for t, f := range flags {
		if f == 0 {
			continue
		}
		if len(rest) < 2*Keys {
			return nil, fmt.Errorf("%w: table %d is cut short", ErrFormat, t)
		}
		var keys [Keys]uint16
		for k := range keys {
			keys[k] = binary.LittleEndian.Uint16(rest[2*k:])
		}
		m.Tables[uint8(t)] = keys
		rest = rest[2*Keys:]
	}
	if len(m.Tables) == 0 || len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d tables, %d bytes left over", ErrFormat, len(m.Tables), len(rest))
	}
	return m, nil
}

// Entry is one key of one table, as the KDSKBENT ioctl takes it.
type Entry struct {
	Table, Key uint8
	Value      uint16
}

// Entries lists the map's keys in table and key order.
func (m *Map) Entries() []Entry {
	var out []Entry
	for t := 0; t < Tables; t++ {
		keys, ok := m.Tables[uint8(t)]
		if !ok {
			continue
		}
		for k, v := range keys {
			out = append(out, Entry{Table: uint8(t), Key: uint8(k), Value: v})
		}
	}
	return out
}
