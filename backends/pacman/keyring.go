package pacman

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// keyring sets up st's private pacman keyring once: pacman-key --init,
// then each repository's keyring: a name is populated as pacman-key
// --populate does (the archlinux-keyring package's trusted and revoked
// keys), a file path is added and all its keys are locally signed. The
// keyserver is removed so that nothing is looked up remotely.
func (d *Driver) keyring(ctx context.Context, st *state) error {
	var keyrings []string
	for _, r := range st.repos {
		if !slices.Contains(keyrings, r.Keyring) {
			keyrings = append(keyrings, r.Keyring)
		}
	}
	done := filepath.Join(st.gpg, ".pkginitrd-keyrings")
	want := strings.Join(keyrings, "\n") + "\n"
	if b, err := os.ReadFile(done); err == nil && string(b) == want {
		return nil
	}
	pacmanKey, err := exec.LookPath("pacman-key")
	if err != nil {
		return fmt.Errorf("pacman keyring: %w (pacman-package-manager)", err)
	}
	if err := os.RemoveAll(st.gpg); err != nil {
		return fmt.Errorf("pacman keyring: %w", err)
	}
	base := []string{pacmanKey, "--config", st.conf, "--gpgdir", st.gpg}
	defer func() { _, _ = run(context.WithoutCancel(ctx), true, "gpgconf", "--homedir", st.gpg, "--kill", "all") }()
	if _, err := run(ctx, true, append(base, "--init")...); err != nil {
		return fmt.Errorf("pacman keyring: %w", err)
	}
	if err := dropKeyserver(filepath.Join(st.gpg, "gpg.conf")); err != nil {
		return fmt.Errorf("pacman keyring: %w", err)
	}
	for _, k := range keyrings {
		if err := addKeyring(ctx, base, k); err != nil {
			return fmt.Errorf("pacman keyring %s: %w", k, err)
		}
	}
	d.log.Debug("pacman: keyring ready", "keyrings", keyrings)
	if err := os.WriteFile(done, []byte(want), 0o644); err != nil {
		return fmt.Errorf("pacman keyring: %w", err)
	}
	return nil
}

func addKeyring(ctx context.Context, base []string, keyring string) error {
	if !strings.Contains(keyring, "/") {
		if keyring == "" || strings.HasPrefix(keyring, "-") {
			return fmt.Errorf("not a keyring name or a key file path")
		}
		_, err := run(ctx, true, append(base, "--populate", keyring)...)
		return err
	}
	fprs, err := fingerprints(ctx, keyring)
	if err != nil {
		return err
	}
	if _, err := run(ctx, true, append(base, "--add", keyring)...); err != nil {
		return err
	}
	for _, f := range fprs {
		if _, err := run(ctx, true, append(base, "--lsign-key", f)...); err != nil {
			return err
		}
	}
	return nil
}

// fingerprints lists the primary keys' fingerprints of a key file.
func fingerprints(ctx context.Context, file string) ([]string, error) {
	out, err := run(ctx, false, "gpg", "--batch", "--no-default-keyring", "--with-colons", "--show-keys", file)
	if err != nil {
		return nil, err
	}
	var fprs []string
	primary := false
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		switch {
		case f[0] == "pub":
			primary = true
		case f[0] == "sub":
			primary = false
		case f[0] == "fpr" && primary && len(f) > 9:
			fprs = append(fprs, f[9])
			primary = false
		}
	}
	if len(fprs) == 0 {
		return nil, fmt.Errorf("%s holds no public key", file)
	}
	return fprs, nil
}

// dropKeyserver removes the keyserver line pacman-key --init writes.
func dropKeyserver(conf string) error {
	b, err := os.ReadFile(conf)
	if err != nil {
		return err
	}
	var kept []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "keyserver") {
			kept = append(kept, l)
		}
	}
	return os.WriteFile(conf, []byte(strings.Join(kept, "\n")), 0o644)
}
