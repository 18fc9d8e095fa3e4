package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/pe"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/backends"
	"github.com/pkginitrd/pkginitrd/image/uki"
	"github.com/pkginitrd/pkginitrd/internal/testdeb"
	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

// stubBackend serves Debian's systemd-boot-efi when asked for it alone,
// else the packages of the backend it wraps.
type stubBackend struct {
	backends.Backend
	stub backends.Package
}

func (b stubBackend) Fetch(ctx context.Context, req backends.Request) ([]backends.Package, error) {
	if slices.Equal(req.Packages, []string{b.stub.Name}) {
		return []backends.Package{b.stub}, nil
	}
	return b.Backend.Fetch(ctx, req)
}

// ukiOptions are testOptions building a UKI with Debian's stub package
// through the backend, the test kernel and a fixed os-release.
func ukiOptions(t *testing.T) Options {
	opts := testOptions(t)
	stub := backends.Package{Name: "systemd-boot-efi", Version: "test", Arch: "amd64", Path: testdeb.Deb(t, "systemd-boot-efi")}
	opts.Backend = stubBackend{opts.Backend, stub}
	opts.Output = filepath.Join(filepath.Dir(opts.Output), "linux.efi")
	opts.OSReleaseRoot = t.TempDir()
	if err := os.Mkdir(filepath.Join(opts.OSReleaseRoot, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeMode(t, filepath.Join(opts.OSReleaseRoot, "etc", "os-release"), "ID=debian\nVERSION_ID=\"12\"\n", 0o644)
	kver := filepath.Base(opts.ModulesDir)
	kroot := filepath.Dir(filepath.Dir(filepath.Dir(opts.ModulesDir)))
	opts.UKI = &UKI{KernelImage: filepath.Join(kroot, "boot", "vmlinuz-"+kver), Cmdline: "console=ttyS0 panic=-1\n"}
	opts.Mtime = 1700000000
	return opts
}

func sectionData(t *testing.T, f *pe.File, name string) []byte {
	t.Helper()
	s := f.Section(name)
	if s == nil {
		t.Fatalf("UKI has no %s section", name)
	}
	b, err := s.Data()
	if err != nil {
		t.Fatal(err)
	}
	return b[:s.VirtualSize]
}

// TestRunUKI builds a UKI: the stub comes through the backend, the
// sections hold the kernel, the image, the command line and os-release,
// no kernel is placed beside it, and a rebuild gives the same bytes.
func TestRunUKI(t *testing.T) {
	opts := ukiOptions(t)
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(opts.Output)
	if err != nil {
		t.Fatal(err)
	}
	f, err := pe.NewFile(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("UKI is not a PE file: %v", err)
	}
	kernel, _ := os.ReadFile(opts.UKI.KernelImage)
	initrdSum := sha256.Sum256(sectionData(t, f, uki.Initrd))
	for name, ok := range map[string]bool{
		uki.Linux:   bytes.Equal(sectionData(t, f, uki.Linux), kernel),
		uki.Initrd:  hex.EncodeToString(initrdSum[:]) == res.Image.SHA256,
		uki.Cmdline: string(sectionData(t, f, uki.Cmdline)) == "console=ttyS0 panic=-1",
		uki.OSRel:   string(sectionData(t, f, uki.OSRel)) == "ID=debian\nVERSION_ID=\"12\"\n",
		uki.Uname:   string(sectionData(t, f, uki.Uname)) == filepath.Base(opts.ModulesDir),
		".sbat":     f.Section(".sbat") != nil,
	} {
		if !ok {
			t.Errorf("section %s is wrong", name)
		}
	}
	if !res.UKI || res.Vmlinuz != "" {
		t.Errorf("result UKI=%v Vmlinuz=%q, want a UKI and no kernel beside it", res.UKI, res.Vmlinuz)
	}
	ents, _ := os.ReadDir(filepath.Dir(opts.Output))
	for _, e := range ents {
		if e.Name() != "linux.efi" && e.Name() != "cache" {
			t.Errorf("unexpected %s beside the UKI", e.Name())
		}
	}
	if fi, _ := os.Stat(opts.Output); fi.Mode().Perm() != 0o600 {
		t.Errorf("UKI mode %v, want 0600 like an image", fi.Mode())
	}
	if _, err := Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(opts.Output); !bytes.Equal(again, out) {
		t.Error("a rebuild gave a different UKI")
	}
}

// TestRunUKISigned signs with a key made by openssl and checks the
// signature with sbverify.
func TestRunUKISigned(t *testing.T) {
	openssl := testenv.NeedTool(t, "openssl", "openssl")
	sbverify := testenv.NeedTool(t, "sbverify", "sbsigntool")
	testenv.NeedTool(t, "sbsign", "sbsigntool")
	opts := ukiOptions(t)
	dir := t.TempDir()
	key, cert := filepath.Join(dir, "db.key"), filepath.Join(dir, "db.crt")
	if out, err := exec.Command(openssl, "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
		"-subj", "/CN=pkginitrd test/", "-keyout", key, "-out", cert).CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	opts.UKI.Key, opts.UKI.Cert = key, cert
	if _, err := Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sbverify, "--cert", cert, opts.Output).CombinedOutput(); err != nil {
		t.Errorf("sbverify --cert: %v\n%s", err, out)
	}
	if _, err := pe.Open(opts.Output); err != nil {
		t.Errorf("signed UKI is not a PE file: %v", err)
	}
}

// TestRunUKIErrors checks that a missing stub, kernel, key or certificate
// fails before anything is written, naming what is missing.
func TestRunUKIErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(o *Options)
		want   string
	}{
		{"no stub package", func(o *Options) {
			d := o.Config.Distributions["debian"]
			d.StubPackage = ""
			o.Config.Distributions["debian"] = d
		}, "names no systemd-stub package (stub_package"},
		{"stub not in the package", func(o *Options) { o.Config.UKI.Stub = "usr/lib/nothing/*.stub" }, "systemd-boot-efi: want one file matching usr/lib/nothing/*.stub, found 0"},
		{"stub file missing", func(o *Options) { o.UKI.Stub = "/nonexistent/linuxx64.efi.stub" }, "systemd-stub: open /nonexistent/linuxx64.efi.stub"},
		{"kernel missing", func(o *Options) { o.UKI.KernelImage = "/nonexistent/vmlinuz" }, "--kernel-image: stat /nonexistent/vmlinuz"},
		{"key missing", func(o *Options) { o.UKI.Key, o.UKI.Cert = "/nonexistent/db.key", "/etc/hostname" }, "--secureboot-key: stat /nonexistent/db.key"},
		{"cert missing", func(o *Options) { o.UKI.Key, o.UKI.Cert = "/etc/hostname", "/nonexistent/db.crt" }, "--secureboot-cert: stat /nonexistent/db.crt"},
		{"key without cert", func(o *Options) { o.UKI.Key = "/etc/hostname" }, "needs both --secureboot-key and --secureboot-cert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := ukiOptions(t)
			tt.modify(&opts)
			_, err := Run(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tt.want)
			}
			if _, err := os.Stat(opts.Output); err == nil {
				t.Errorf("failed build wrote %s", opts.Output)
			}
		})
	}
}
