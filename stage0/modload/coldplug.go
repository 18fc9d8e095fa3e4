package modload

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Modaliases returns the contents of every modalias file under
// sysRoot/devices: the aliases of the devices present now. Files that vanish
// while walking (devices removed) are skipped.
func Modaliases(sysRoot string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	root := filepath.Join(sysRoot, "devices")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != root {
				return nil
			}
			return err
		}
		// WalkDir does not follow symlinks, so sysfs's cycles (subsystem,
		// driver, device links) are not entered.
		if d.Type().IsRegular() && d.Name() == "modalias" {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil // vanished or unreadable: nothing to load for it
			}
			if a := strings.TrimSpace(string(b)); a != "" && !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("coldplug: walk %s: %w", root, err)
	}
	return out, nil
}
