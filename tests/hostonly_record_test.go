package tests

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recordHeader marks the raw disk the recorder init writes to; the init
// overwrites it with the recording.
const recordHeader = "PKGINITRD-RECORD"

// recordScript is the part of the recorder init that writes the guest's
// /proc/modules, /proc/self/mountinfo, /proc/crypto and the parts of /sys host-only
// detection reads to the disk starting with recordHeader, as text:
// sections "== NAME", symbolic links as busybox stat's %N ('path' ->
// 'target'), attribute files as grep -H (path:content).
const recordScript = `rec=/run/record
{
  $bb echo "== proc/modules"
  $bb cat /proc/modules
  $bb echo "== proc/self/mountinfo"
  $bb cat /proc/self/mountinfo
  $bb echo "== proc/crypto"
  $bb cat /proc/crypto
  $bb echo "== links"
  $bb find /sys/dev/block /sys/block /sys/class/block /sys/devices -type l -exec $bb stat -c '%N' {} +
  $bb find /sys/bus -path '*/drivers/*/module' -type l -exec $bb stat -c '%N' {} +
  $bb echo "== files"
  $bb find /sys/devices -type f \( -name dev -o -name partition -o -name modalias -o -path '*/dm/uuid' -o -path '*/dm/name' -o -path '*/md/level' \) -exec $bb grep -H '' {} +
  $bb echo "== end"
} > $rec
for d in /dev/vd?; do
  if [ "$($bb head -c 16 $d)" = "` + recordHeader + `" ]; then
    $bb dd if=$rec of=$d bs=64k conv=fsync 2>/dev/null
    $bb echo "` + marker + ` recorded=$($bb wc -c < $rec)"
  fi
done
`

// recorderRoot is fixtureRoot with an init that also records the guest.
func recorderRoot(t *testing.T) string {
	t.Helper()
	return fixtureRootWith(t, recordScript)
}

// recordDisk makes the empty raw disk the recorder writes to.
func recordDisk(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "record.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(recordHeader); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(16 << 20); err != nil {
		t.Fatal(err)
	}
	return p
}

// extractRecording re-creates the recorded proc/ and sys/ under a new
// sysroot directory and returns it.
func extractRecording(t *testing.T, disk string) string {
	t.Helper()
	data, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		data = data[:i]
	}
	if bytes.HasPrefix(data, []byte(recordHeader)) || !bytes.HasSuffix(data, []byte("== end\n")) {
		t.Fatalf("record disk %s holds no complete recording (%d bytes): %.200q", disk, len(data), data)
	}
	root := t.TempDir()
	put := func(p string, content []byte) {
		dst := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	section := ""
	var text bytes.Buffer
	links, files := 0, 0
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if name, ok := strings.CutPrefix(line, "== "); ok {
			if strings.HasPrefix(section, "proc/") {
				put(section, text.Bytes())
			}
			section = name
			text.Reset()
			continue
		}
		switch section {
		case "proc/modules", "proc/self/mountinfo", "proc/crypto":
			text.WriteString(line + "\n")
		case "links":
			// '/sys/a/b' -> '../c'
			p, target, ok := strings.Cut(strings.Trim(line, "'"), "' -> '")
			if !ok || !strings.HasPrefix(p, "/sys/") {
				t.Fatalf("recording: bad link line %q", line)
			}
			dst := filepath.Join(root, p)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, dst); err != nil {
				t.Fatal(err)
			}
			links++
		case "files":
			p, content, ok := cutAttr(line)
			if !ok {
				t.Fatalf("recording: bad file line %q", line)
			}
			put(p, []byte(content+"\n"))
			files++
		default:
			t.Fatalf("recording: line %q outside a known section (%q)", line, section)
		}
	}
	t.Logf("recording: %d bytes, %d links, %d attribute files", len(data), links, files)
	return root
}

// cutAttr splits a grep -H line "/sys/.../NAME:content" of one of the
// recorded attribute names (paths contain ':' too, e.g. PCI addresses).
func cutAttr(line string) (path, content string, ok bool) {
	best := -1
	for _, name := range []string{"/dev:", "/partition:", "/modalias:", "/dm/uuid:", "/dm/name:", "/md/level:"} {
		if i := strings.LastIndex(line, name); i >= 0 && (best < 0 || i < best) {
			// The attribute's own separator: the first such occurrence that ends a path.
			best = i + len(name) - 1
		}
	}
	if best < 0 || !strings.HasPrefix(line, "/sys/") {
		return "", "", false
	}
	return line[:best], line[best+1:], true
}
