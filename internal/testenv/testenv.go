// Package testenv lets a test say what it needs from the machine: a system
// tool, root, the network. When that is missing the test is skipped with the
// reason, so that `go test ./...` passes for an ordinary user; under
// PKGINITRD_E2E=1 (set by the README's test command, which installs every
// tool) it fails instead, naming what to install.
package testenv

import (
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// E2E is the environment variable that, set to 1, asks for every test to run.
const E2E = "PKGINITRD_E2E"

// All reports whether PKGINITRD_E2E=1 asks for every test to run.
func All() bool { return os.Getenv(E2E) == "1" }

// Missing skips t because a prerequisite is missing, or fails it when All.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if All() {
		t.Fatalf("%s (%s=1 runs every test)", msg, E2E)
	} else {
		t.Skipf("%s (%s=1 makes this a failure)", msg, E2E)
	}
}

// NeedTool returns the path of prog, looked up in PATH and then in /usr/sbin
// and /sbin (where Debian puts mkfs, sfdisk, depmod… outside a user's PATH);
// debPkg is the Debian package that provides it. Not found, it calls Missing.
func NeedTool(t testing.TB, prog, debPkg string) string {
	t.Helper()
	if p, err := exec.LookPath(prog); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p, err := exec.LookPath(filepath.Join(dir, prog)); err == nil {
			return p
		}
	}
	Missing(t, "%s not found: apt-get install %s", prog, debPkg)
	return ""
}

// NeedRoot calls Missing unless t runs as root; why says what needs root.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "%s needs root", why)
	}
}

// NeedNetwork calls Missing unless the host of url (e.g. a Debian mirror)
// answers a TCP connection.
func NeedNetwork(t testing.TB, url string) {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatalf("NeedNetwork(%q): %v", url, err)
	}
	port := u.Port()
	if port == "" {
		port = u.Scheme // "http", "https": net.Dial knows the service names
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(u.Hostname(), port), 10*time.Second)
	if err != nil {
		Missing(t, "needs the network: %v", err)
		return
	}
	_ = c.Close()
}
