package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoSBOMLibraries keeps the SBOM libraries out of the binary, which
// is also every image's /init: image/sbom writes both formats itself and
// uses github.com/spdx/tools-golang and github.com/CycloneDX/cyclonedx-go
// in its tests only (they added 270 KB, 3.4 %, to the stripped binary).
func TestNoSBOMLibraries(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/spdx/") || strings.HasPrefix(pkg, "github.com/CycloneDX/") || strings.HasPrefix(pkg, "github.com/anchore/") {
			t.Errorf("cmd/pkginitrd imports %s; keep the SBOM libraries in _test.go files", pkg)
		}
	}
}
