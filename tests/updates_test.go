package tests

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/pipeline"
)

// TestImageHasHostCandidates builds a generic image for this host's own
// release (a Debian bookworm host whose sources include bookworm-updates
// and bookworm-security) and checks that it carries the versions the
// host's apt offers: the manifest's linux-image, libssl3, cryptsetup and
// lvm2 packages must be `apt-cache policy`'s candidates, and every package
// must say which repository and suite it came from. Before, the image was
// resolved from the release suite alone and lagged security fixes.
//
// The host's package lists must be current (run-all.sh runs apt-get
// update first); pkginitrd refreshes its own lists when a day old.
func TestImageHasHostCandidates(t *testing.T) {
	e := setup(t)
	dir := t.TempDir()
	manifestPath := filepath.Join(dir, "manifest.json")
	args := []string{"build", "--generic", "--kernel-package", "linux-image-amd64", "--cache-dir", e.cacheDir,
		"-o", filepath.Join(dir, "initrd.img"), "--manifest", manifestPath}
	if out, err := exec.Command(e.bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("pkginitrd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	data, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	var m pipeline.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}

	watched := regexp.MustCompile(`^(libssl3|cryptsetup.*|libcryptsetup.*|lvm2|dmsetup|libdevmapper.*|liblvm2.*)$`)
	names := []string{"linux-image-amd64"}
	for _, p := range m.Packages {
		if p.Repository == "" || p.Suite == "" {
			t.Errorf("manifest package %s %s does not say where it came from (repository %q, suite %q)", p.Name, p.Version, p.Repository, p.Suite)
		}
		if watched.MatchString(p.Name) {
			names = append(names, p.Name)
		}
	}
	for _, want := range []string{"libssl3", "cryptsetup-bin", "lvm2"} {
		if !slices.Contains(names, want) {
			t.Errorf("the generic image lacks %s (packages: %v)", want, m.Packages)
		}
	}
	candidates := hostCandidates(t, names...)
	for _, p := range m.Packages {
		if watched.MatchString(p.Name) {
			if want := candidates[p.Name]; p.Version != want {
				t.Errorf("image has %s %s (from %s %s), host apt's candidate is %s", p.Name, p.Version, p.Repository, p.Suite, want)
			} else {
				t.Logf("%s %s from %s %s", p.Name, p.Version, p.Repository, p.Suite)
			}
		}
	}

	// The kernel: the candidate linux-image-amd64 depends on exactly one
	// linux-image-KVER package, whose KVER the image must be built for.
	meta := candidates["linux-image-amd64"]
	out, err := exec.Command("apt-cache", "show", "linux-image-amd64="+meta).Output()
	if err != nil {
		t.Fatalf("apt-cache show linux-image-amd64=%s: %v", meta, err)
	}
	dep := regexp.MustCompile(`(?m)^Depends:.*\blinux-image-(\S+) \(= `).FindSubmatch(out)
	if dep == nil {
		t.Fatalf("apt-cache show linux-image-amd64=%s names no linux-image-KVER:\n%s", meta, out)
	}
	if string(dep[1]) != m.KernelVersion {
		t.Errorf("image is for kernel %s, host apt's candidate linux-image-amd64 %s is kernel %s", m.KernelVersion, meta, dep[1])
	}
}

// hostCandidates returns the candidate version of each package as the
// host's own apt configuration sees it.
func hostCandidates(t *testing.T, names ...string) map[string]string {
	t.Helper()
	cmd := exec.Command("apt-cache", append([]string{"policy"}, names...)...)
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "APT_CONFIG=") }), "LC_ALL=C.UTF-8")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("apt-cache policy: %v", err)
	}
	got := map[string]string{}
	name := ""
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasSuffix(line, ":") && !strings.HasPrefix(line, " ") {
			name, _, _ = strings.Cut(strings.TrimSuffix(line, ":"), ":")
		} else if c, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate: "); ok && name != "" {
			got[name] = c
		}
	}
	for _, n := range names {
		if got[n] == "" || got[n] == "(none)" {
			t.Fatalf("host apt has no candidate for %s:\n%s", n, out)
		}
	}
	return got
}
