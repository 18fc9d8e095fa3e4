package dm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkginitrd/pkginitrd/stage0/machine"
)

// Mapping is an active device-mapper device as sysfs shows it.
type Mapping = machine.Mapping

// Mappings lists the device-mapper devices in sysRoot/class/block.
func Mappings(sysRoot string) ([]Mapping, error) {
	dir := filepath.Join(sysRoot, "class", "block")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	var out []Mapping
	for _, e := range ents {
		if m, err := ReadMapping(filepath.Join(dir, e.Name())); err == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// ReadMapping reads dm/name, dm/uuid and dev of the block device whose sysfs
// directory is dir ("/sys/block/dm-0"); it fails when there is no dm/name.
func ReadMapping(dir string) (Mapping, error) {
	name, err := os.ReadFile(filepath.Join(dir, "dm", "name"))
	if err != nil {
		return Mapping{}, err
	}
	uuid, _ := os.ReadFile(filepath.Join(dir, "dm", "uuid"))
	dev, _ := os.ReadFile(filepath.Join(dir, "dev"))
	return Mapping{Kernel: filepath.Base(dir), Name: strings.TrimSpace(string(name)), UUID: strings.TrimSpace(string(uuid)),
		Dev: strings.TrimSpace(string(dev))}, nil
}

// Link makes devRoot/mapper/NAME for every mapping and devRoot/VG/LV for
// LVM's, as symlinks to the dm-N node, where neither libdevmapper nor lvm
// made them. Existing entries are left alone.
func Link(devRoot string, maps []Mapping) error {
	var errs []error
	link := func(path, target string) {
		if _, err := os.Lstat(path); err == nil {
			return
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			errs = append(errs, fmt.Errorf("create %s: %w", filepath.Dir(path), err))
			return
		}
		if err := os.Symlink(target, path); err != nil {
			errs = append(errs, fmt.Errorf("link %s: %w", path, err))
		}
	}
	for _, m := range maps {
		if m.Name == "" || strings.Contains(m.Name, "/") {
			continue
		}
		link(filepath.Join(devRoot, "mapper", m.Name), "../"+m.Kernel)
		if strings.HasPrefix(m.UUID, "LVM-") {
			if vg, lv, ok := SplitMapperName(m.Name); ok && !strings.Contains(vg+lv, "/") {
				link(filepath.Join(devRoot, vg, lv), "../"+m.Kernel)
			}
		}
	}
	return errors.Join(errs...)
}
