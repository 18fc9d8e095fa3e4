package testenv

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Skipf and Fatalf instead of
// stopping the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Skipf(format string, args ...any) { r.skipped = fmt.Sprintf(format, args...) }

func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestNeedTool(t *testing.T) {
	for _, tc := range []struct {
		name, prog, e2e       string
		found                 bool
		wantSkip, wantFailure bool
	}{
		{"present", "sh", "", true, false, false},
		{"present, e2e", "sh", "1", true, false, false},
		{"missing", "pkginitrd-no-such-tool", "", false, true, false},
		{"missing, e2e", "pkginitrd-no-such-tool", "1", false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(E2E, tc.e2e)
			r := &recorder{TB: t}
			p := NeedTool(r, tc.prog, "some-deb")
			if (p != "") != tc.found || (r.skipped != "") != tc.wantSkip || (r.failed != "") != tc.wantFailure {
				t.Fatalf("NeedTool(%s) = %q, skipped %q, failed %q", tc.prog, p, r.skipped, r.failed)
			}
			for _, msg := range []string{r.skipped, r.failed} {
				if msg != "" && (!strings.Contains(msg, tc.prog) || !strings.Contains(msg, "apt-get install some-deb")) {
					t.Errorf("message %q does not name %s and its package", msg, tc.prog)
				}
			}
		})
	}
}

func TestNeedNetwork(t *testing.T) {
	listen := func() net.Listener {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	open, closed := listen(), listen()
	defer open.Close()
	closed.Close() // its port now refuses connections
	for _, tc := range []struct {
		addr     net.Addr
		wantSkip bool
	}{{open.Addr(), false}, {closed.Addr(), true}} {
		t.Setenv(E2E, "")
		r := &recorder{TB: t}
		url := "http://" + tc.addr.String() + "/debian"
		NeedNetwork(r, url)
		if (r.skipped != "") != tc.wantSkip || r.failed != "" {
			t.Errorf("NeedNetwork(%s): skipped %q, failed %q; want skipped %v", url, r.skipped, r.failed, tc.wantSkip)
		}
	}
}
