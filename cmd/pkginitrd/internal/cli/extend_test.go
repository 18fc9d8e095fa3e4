package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/image"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// prebuilt writes a small image (another generator's: no pkginitrd
// configuration) to p.
func prebuilt(t *testing.T, p string) []byte {
	t.Helper()
	tr := fstree.New()
	if err := tr.Add(fstree.Entry{Path: "init", Kind: fstree.File, Mode: 0o755, Data: []byte("#!/bin/sh\n"), Size: 10}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := image.Build(context.Background(), p, tr, image.Options{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExtendCommand(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.img")
	baseBytes := prebuilt(t, base)
	key := filepath.Join(dir, "root.key")
	mkfile(t, key, "secret")
	out := filepath.Join(dir, "host.img")
	code, stdout, stderr := runCLIEnv(t, nil, "extend", "--base", base, "-o", out, "--include", key+":/etc/keys/root.key")
	if code != 0 || !strings.Contains(stdout, "unchanged") {
		t.Fatalf("extend = %d %q %q, want 0 and a summary", code, stdout, stderr)
	}
	if b, _ := os.ReadFile(out); !bytes.HasPrefix(b, baseBytes) || len(b) == len(baseBytes) {
		t.Errorf("extended image does not start with the base's bytes or adds nothing")
	}
	// --cmdline needs stage0: this base has none.
	if code, _, stderr := runCLIEnv(t, nil, "extend", "--base", base, "-o", out, "--cmdline", "quiet"); code != 1 || !strings.Contains(stderr, "not a pkginitrd image") {
		t.Errorf("extend --cmdline on a foreign image = %d %q, want 1 and the reason", code, stderr)
	}
	if code, _, _ := runCLIEnv(t, nil, "extend", "-o", out); code != 2 {
		t.Errorf("extend without --base = %d, want 2", code)
	}
}

// TestKernelInstallExtendsPrebuilt: with an [extend] section in the
// configuration, the plugin stages the prebuilt initrd plus the addition.
func TestKernelInstallExtendsPrebuilt(t *testing.T) {
	dir := t.TempDir()
	kdir := filepath.Join(dir, "usr/lib/modules/6.1.0-9-amd64")
	mkfile(t, filepath.Join(kdir, "vmlinuz"), "kernel")
	baseBytes := prebuilt(t, filepath.Join(kdir, "initrd"))
	key := filepath.Join(dir, "root.key")
	mkfile(t, key, "secret")
	conf := filepath.Join(dir, "extend.toml")
	mkfile(t, conf, "[extend]\ninclude = [\""+key+":/etc/keys/root.key\"]\n")
	staging := filepath.Join(dir, "staging")
	if err := os.Mkdir(staging, 0o700); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KERNEL_INSTALL_STAGING_AREA": staging, "KERNEL_INSTALL_VERBOSE": "1"}
	code, out, stderr := runCLIEnv(t, env, "kernel-install", "--config", conf, "add", "6.1.0-9-amd64", filepath.Join(dir, "entry"), filepath.Join(kdir, "vmlinuz"))
	if code != 0 || !strings.Contains(out, "[extend] addition") {
		t.Fatalf("kernel-install add (prebuilt, [extend]) = %d %q %q, want 0 and a line naming the addition", code, out, stderr)
	}
	b, err := os.ReadFile(filepath.Join(staging, "initrd"))
	if err != nil || !bytes.HasPrefix(b, baseBytes) || len(b) == len(baseBytes) {
		t.Errorf("staged initrd (%d bytes, %v) is not the prebuilt one (%d bytes) plus an addition", len(b), err, len(baseBytes))
	}
}
