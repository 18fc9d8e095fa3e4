package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pkginitrd/pkginitrd/backends/unpack"
	"github.com/pkginitrd/pkginitrd/image/uki"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// UKI makes the build's output a unified kernel image: systemd-stub with
// the kernel, the image, the command line and os-release as sections
// (image/uki), optionally signed for Secure Boot.
type UKI struct {
	// KernelImage is the kernel; "" takes the kernel package's vmlinuz,
	// else the module tree's vmlinuz or /boot/vmlinuz-KVER.
	KernelImage string
	Cmdline     string // the kernel command line; "" = no .cmdline section
	// Stub is a systemd-stub file; "" fetches the distribution's
	// stub_package through the backend and takes [uki] stub from it.
	Stub string
	// Key and Cert sign the UKI with sbsign when set (both or neither).
	Key, Cert string
}

// ukiInputs holds what the uki step assembles, found before the slow work.
type ukiInputs struct {
	kernel string
	stub   []byte
	initrd *os.File // the image, an unlinked temporary file
}

// findUKIInputs checks the UKI's kernel, stub, key and certificate (the
// "stub" step), so that a missing one fails before the image is built.
func (b *build) findUKIInputs(ctx context.Context) error {
	u := b.opts.UKI
	if u == nil {
		return nil
	}
	if err := checkSigning(u.Key, u.Cert); err != nil {
		return err
	}
	kernel, err := ukiKernel(u.KernelImage, b.kern)
	if err != nil {
		return err
	}
	b.uki.kernel = kernel
	path := u.Stub
	if path == "" {
		if path, err = b.fetchStub(ctx); err != nil {
			return err
		}
	}
	if b.uki.stub, err = os.ReadFile(path); err != nil {
		return fmt.Errorf("systemd-stub: %w", err)
	}
	b.log.Info("unified kernel image", "stub", path, "kernel", kernel, "signed", u.Key != "")
	return nil
}

// checkSigning checks that key and cert are given together and readable,
// and that sbsign is installed.
func checkSigning(key, cert string) error {
	if key == "" && cert == "" {
		return nil
	}
	if key == "" || cert == "" {
		return errors.New("signing needs both --secureboot-key and --secureboot-cert")
	}
	for _, f := range []struct{ what, path string }{{"--secureboot-key", key}, {"--secureboot-cert", cert}} {
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%s: %w", f.what, err)
		}
	}
	if _, err := exec.LookPath("sbsign"); err != nil {
		return fmt.Errorf("signing the UKI needs sbsign (Debian package sbsigntool): %w", err)
	}
	return nil
}

// ukiKernel is the kernel image of a UKI: given, from the kernel package,
// or beside the module tree.
func ukiKernel(given string, k kernel) (string, error) {
	if given != "" {
		if _, err := os.Stat(given); err != nil {
			return "", fmt.Errorf("--kernel-image: %w", err)
		}
		return given, nil
	}
	if k.Vmlinuz != "" {
		return k.Vmlinuz, nil
	}
	tried := []string{filepath.Join(k.ModulesDir, "vmlinuz"), "/boot/vmlinuz-" + k.Version}
	for _, p := range tried {
		if regularFile(p) != nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("a UKI needs the kernel image: none at %s; pass --kernel-image PATH or --kernel-package", strings.Join(tried, " or "))
}

// fetchStub fetches the distribution's stub package through the backend
// (the same cache as every package) and returns the stub's path in it.
func (b *build) fetchStub(ctx context.Context) (string, error) {
	name := b.plan.Distribution.StubPackage
	if name == "" {
		return "", fmt.Errorf("distribution %s names no systemd-stub package (stub_package in conf.d); pass --uki-stub PATH", b.plan.Name)
	}
	be, err := b.backend()
	if err != nil {
		return "", err
	}
	pkgs, err := be.Fetch(ctx, b.request([]string{name}))
	if err != nil {
		return "", fmt.Errorf("systemd-stub package %s: %w", name, err)
	}
	c := unpack.Cache{Dir: b.opts.CacheDir, Logger: b.log, Limits: unpackLimits(b.opts.Config.Unpack)}
	trees, err := c.Trees(ctx, pkgs, 0)
	if err != nil {
		return "", fmt.Errorf("systemd-stub package %s: %w", name, err)
	}
	pattern := b.opts.Config.UKI.Stub
	var found []string
	for i, tr := range trees {
		if pkgs[i].Name != name {
			continue
		}
		m, err := filepath.Glob(filepath.Join(tr.Dir, pattern))
		if err != nil {
			return "", fmt.Errorf("[uki] stub %q: %w", pattern, err)
		}
		found = append(found, m...)
	}
	if len(found) != 1 {
		return "", fmt.Errorf("systemd-stub package %s: want one file matching %s, found %d", name, pattern, len(found))
	}
	return found[0], nil
}

// ukiInitrd is where the write step puts the image of a UKI: a temporary
// file beside the output, unlinked at once so that nothing is left behind.
func (b *build) ukiInitrd() (*os.File, error) {
	f, err := os.CreateTemp(filepath.Dir(b.opts.Output), "."+filepath.Base(b.opts.Output)+".initrd-*")
	if err != nil {
		return nil, fmt.Errorf("create temporary initrd: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("create temporary initrd: %w", err)
	}
	b.uki.initrd = f
	return f, nil
}

// assembleUKI writes the UKI to the pending output (the "uki" step) and
// signs it when asked.
func (b *build) assembleUKI(ctx context.Context) error {
	u := b.opts.UKI
	if u == nil {
		return nil
	}
	defer b.uki.initrd.Close()
	secs, closeKernel, err := b.ukiSections()
	if err != nil {
		return err
	}
	defer closeKernel()
	out, err := b.out.Create(b.opts.Output, b.mode)
	if err != nil {
		return err
	}
	if u.Key == "" {
		if _, err := uki.Write(out, b.uki.stub, secs); err != nil {
			return fmt.Errorf("write %s: %w", b.opts.Output, err)
		}
		return nil
	}
	return signUKI(ctx, out, b.uki.stub, secs, u.Key, u.Cert)
}

// ukiSections are the sections of the UKI: os-release, command line,
// kernel release, the image and the kernel.
func (b *build) ukiSections() ([]uki.Section, func(), error) {
	osrel, from, err := b.osRelease()
	if err != nil {
		return nil, nil, err
	}
	b.log.Info("UKI os-release", "from", from)
	secs := []uki.Section{uki.Bytes(uki.OSRel, osrel)}
	if c := strings.TrimSpace(b.opts.UKI.Cmdline); c != "" {
		secs = append(secs, uki.Bytes(uki.Cmdline, []byte(c)))
	} else {
		b.log.Warn("the UKI has no command line: the boot loader's is used (when Secure Boot is off)")
	}
	secs = append(secs, uki.Bytes(uki.Uname, []byte(b.kern.Version)))
	initrd := uki.Section{Name: uki.Initrd, Data: b.uki.initrd, Size: b.result.Image.Size}
	k, err := os.Open(b.uki.kernel)
	if err != nil {
		return nil, nil, fmt.Errorf("kernel image: %w", err)
	}
	fi, err := k.Stat()
	if err != nil {
		k.Close()
		return nil, nil, fmt.Errorf("kernel image: %w", err)
	}
	secs = append(secs, initrd, uki.Section{Name: uki.Linux, Data: k, Size: fi.Size()})
	return secs, func() { k.Close() }, nil
}

// osRelease is the distribution's os-release: the image's
// usr/lib/os-release when a package put one there, else the host's.
func (b *build) osRelease() (data []byte, from string, err error) {
	if e := b.tree.Get("usr/lib/os-release"); e != nil && e.Kind == fstree.File {
		r, err := e.Open()
		if err != nil {
			return nil, "", err
		}
		defer r.Close()
		data, err = io.ReadAll(r)
		return data, "usr/lib/os-release of " + e.Origin, err
	}
	root := b.opts.OSReleaseRoot
	if root == "" {
		root = "/"
	}
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		data, err = os.ReadFile(filepath.Join(root, p))
		if err == nil {
			return data, filepath.Join(root, p), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("os-release: %w", err)
		}
	}
	return nil, "", fmt.Errorf("os-release: none in the image or at %s", filepath.Join(root, "etc/os-release"))
}

// signUKI writes the UKI to a private directory, signs it with sbsign and
// copies the signed one to out. sbsign is Debian's (and every
// distribution's) tool for Authenticode signatures of EFI binaries, the
// counterpart of the sbverify that checks them; it keeps signing in a
// program audited for it rather than in a new Go dependency.
func signUKI(ctx context.Context, out io.Writer, stub []byte, secs []uki.Section, key, cert string) error {
	dir, err := os.MkdirTemp("", "pkginitrd-sign-")
	if err != nil {
		return fmt.Errorf("sign UKI: %w", err)
	}
	defer os.RemoveAll(dir)
	unsigned, signed := filepath.Join(dir, "unsigned.efi"), filepath.Join(dir, "signed.efi")
	f, err := os.OpenFile(unsigned, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("sign UKI: %w", err)
	}
	_, err = uki.Write(f, stub, secs)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sign UKI: %w", err)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "sbsign", "--key", key, "--cert", cert, "--output", signed, unsigned)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("sbsign --key %s --cert %s: %w: %s", key, cert, err, strings.TrimSpace(stderr.String()))
	}
	s, err := os.Open(signed)
	if err != nil {
		return fmt.Errorf("sign UKI: %w", err)
	}
	defer s.Close()
	if _, err := io.Copy(out, s); err != nil {
		return fmt.Errorf("sign UKI: %w", err)
	}
	return nil
}
