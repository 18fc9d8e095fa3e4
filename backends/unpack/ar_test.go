package unpack

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

func TestParseArHeader(t *testing.T) {
	hdr := func(name, size, end string) []byte {
		return []byte(fmt.Sprintf("%-16s%-12s%-6s%-6s%-8s%-10s%s", name, "0", "0", "0", "100644", size, end))
	}
	tests := []struct {
		hdr     []byte
		name    string
		size    int64
		wantErr bool
	}{
		{hdr("debian-binary", "4", "`\n"), "debian-binary", 4, false},
		{hdr("data.tar.xz/", "1234", "`\n"), "data.tar.xz", 1234, false}, // GNU ar style
		{hdr("data.tar", "12x", "`\n"), "", 0, true},
		{hdr("data.tar", "-1", "`\n"), "", 0, true},
		{hdr("data.tar", "1", "xx"), "", 0, true},
		{[]byte("short"), "", 0, true},
	}
	for _, tt := range tests {
		name, size, err := parseArHeader(tt.hdr)
		if (err != nil) != tt.wantErr || name != tt.name || size != tt.size {
			t.Errorf("parseArHeader(%q) = %q, %d, %v, want %q, %d, error %v", tt.hdr, name, size, err, tt.name, tt.size, tt.wantErr)
		}
	}
}

func TestArReader(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(arMagic)
	for _, m := range []arMember{{"odd", []byte("abc")}, {"even", []byte("wxyz")}} {
		fmt.Fprintf(&b, "%-16s%-12d%-6d%-6d%-8o%-10d`\n", m.name, 0, 0, 0, 0o644, len(m.data))
		b.Write(m.data)
		if len(m.data)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	ar, err := newArReader(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	// Skip the first member unread: Next must step over it and its padding.
	if name, _, err := ar.Next(); err != nil || name != "odd" {
		t.Fatalf("Next = %q, %v, want odd", name, err)
	}
	name, size, err := ar.Next()
	if err != nil || name != "even" || size != 4 {
		t.Fatalf("Next = %q, %d, %v, want even, 4", name, size, err)
	}
	data, err := io.ReadAll(ar)
	if err != nil || string(data) != "wxyz" {
		t.Errorf("read member = %q, %v, want wxyz", data, err)
	}
	if _, _, err := ar.Next(); err != io.EOF {
		t.Errorf("Next after the last member = %v, want EOF", err)
	}
	if _, err := newArReader(bytes.NewReader([]byte("!<arch"))); err == nil {
		t.Errorf("newArReader(short) = nil error, want one")
	}
}
