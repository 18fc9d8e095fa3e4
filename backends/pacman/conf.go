package pacman

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Repo is one pacman repository: its servers (tried in order) and the
// keyring its packages and database are signed with.
type Repo struct {
	Name    string
	Servers []string // URLs; $repo and $arch are expanded by pacman
	Keyring string   // keyring name (pacman-key --populate) or key file path
}

// ParseConf reads the repositories of a pacman.conf: every section but
// [options], with its Server lines and the Server lines of the files its
// Include lines name (a mirrorlist), in order. open opens an included file.
// Repositories without a server are left out, as pacman ignores them.
func ParseConf(r io.Reader, open func(path string) (io.ReadCloser, error)) ([]Repo, error) {
	var repos []Repo
	var cur *Repo
	err := eachSetting(r, func(section, key, value string) error {
		if section == "" || section == "options" {
			return nil
		}
		if cur == nil || cur.Name != section {
			repos = append(repos, Repo{Name: section})
			cur = &repos[len(repos)-1]
		}
		switch key {
		case "Server":
			cur.Servers = append(cur.Servers, value)
		case "Include":
			f, err := open(value)
			if err != nil {
				return fmt.Errorf("[%s] Include: %w", section, err)
			}
			defer f.Close()
			return eachSetting(f, func(_, key, value string) error {
				if key == "Server" {
					cur.Servers = append(cur.Servers, value)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read pacman.conf: %w", err)
	}
	return slices.DeleteFunc(repos, func(r Repo) bool { return len(r.Servers) == 0 }), nil
}

// eachSetting calls fn for each "key = value" (or bare key) line of an
// INI-style pacman file, with the section it is in.
func eachSetting(r io.Reader, fn func(section, key, value string) error) error {
	sc := bufio.NewScanner(r)
	section := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		key, value, _ := strings.Cut(line, "=")
		if err := fn(section, strings.TrimSpace(key), strings.TrimSpace(value)); err != nil {
			return err
		}
	}
	return sc.Err()
}

// writeConf renders the private pacman.conf: signatures required for
// packages and databases, one section per repository.
func writeConf(arch string, repos []Repo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[options]\nArchitecture = %s\nSigLevel = Required DatabaseRequired\nLocalFileSigLevel = Required\n", arch)
	for _, r := range repos {
		fmt.Fprintf(&b, "\n[%s]\n", r.Name)
		for _, s := range r.Servers {
			fmt.Fprintf(&b, "Server = %s\n", s)
		}
	}
	return b.String()
}

// stateKey names the private state of one repository set and
// architecture: a different server, keyring or architecture gets its own
// databases, keyring and package cache.
func stateKey(arch string, repos []Repo) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", arch)
	for _, r := range repos {
		fmt.Fprintf(h, "%s\x00%s\x00%s\n", r.Name, strings.Join(r.Servers, "\x00"), r.Keyring)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// pacmanArch maps a Debian architecture name to pacman's.
func pacmanArch(arch string) string {
	switch arch {
	case "", "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "i386":
		return "i686"
	}
	return arch
}
