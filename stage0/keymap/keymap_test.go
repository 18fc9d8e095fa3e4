package keymap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

// bkeymap builds loadkeys -b output with the given tables; table t's key
// k has the value t<<8|k.
func bkeymap(tables ...int) []byte {
	var b bytes.Buffer
	b.WriteString(Magic)
	flags := make([]byte, Tables)
	for _, t := range tables {
		flags[t] = 1
	}
	b.Write(flags)
	for _, t := range tables {
		for k := 0; k < Keys; k++ {
			binary.Write(&b, binary.LittleEndian, uint16(t<<8|k)) //nolint:errcheck // bytes.Buffer
		}
	}
	return b.Bytes()
}

func TestParse(t *testing.T) {
	m, err := Parse(bkeymap(0, 1, 12))
	if err != nil {
		t.Fatal(err)
	}
	e := m.Entries()
	if len(e) != 3*Keys || e[0] != (Entry{0, 0, 0}) || e[Keys+16] != (Entry{1, 16, 0x110}) || e[len(e)-1] != (Entry{12, 127, 0xc7f}) {
		t.Errorf("Parse: %d entries, first %v, table 1 key 16 %v, last %v", len(e), e[0], e[Keys+16], e[len(e)-1])
	}
	for _, bad := range [][]byte{nil, []byte("bkeymap"), bkeymap(0)[:len(bkeymap(0))-1], append(bkeymap(0), 0), bkeymap(), []byte("xkeymap" + string(make([]byte, Tables)))} {
		if _, err := Parse(bad); !errors.Is(err, ErrFormat) {
			t.Errorf("Parse(%d bytes) = %v, want ErrFormat", len(bad), err)
		}
	}
}

// TestParseGolden reads testdata/fr-latin1.bmap, made with
// `loadkeys -b fr-latin1` (kbd 2.5.1, console-data 1.12-9, Debian
// bookworm): the French AZERTY layout.
func TestParseGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/fr-latin1.bmap")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	plain, shift := m.Tables[0], m.Tables[1]
	// KT_LETTER (0x0b) a on the US q key (16), q on the US a key (30),
	// KT_LATIN & and é on the digit keys 1 and 2 (2, 3), 1 shifted.
	for _, c := range []struct {
		name      string
		got, want uint16
	}{{"a", plain[16], 0xb61}, {"q", plain[30], 0xb71}, {"&", plain[2], 0x26}, {"é", plain[3], 0xe9}, {"1", shift[2], 0x31}, {"A", shift[16], 0xb41}} {
		if c.got != c.want {
			t.Errorf("fr-latin1 %s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}
