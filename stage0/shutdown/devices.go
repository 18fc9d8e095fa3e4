package shutdown

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pkginitrd/pkginitrd/stage0/dm"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
)

// BlockDev is a device-mapper or attached loop device as sysfs shows it.
type BlockDev = machine.BlockDev

// The kinds of BlockDev.
const (
	DM   = machine.DM
	Loop = machine.Loop
)

// ReadDevices lists the device-mapper devices and the attached loop
// devices in sysRoot/block, with their holders.
func ReadDevices(sysRoot string) ([]BlockDev, error) {
	dir := filepath.Join(sysRoot, "block")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	var out []BlockDev
	var errs []error
	for _, e := range ents {
		k := e.Name()
		d := BlockDev{Kernel: k}
		base := filepath.Join(dir, k)
		switch {
		case strings.HasPrefix(k, "dm-"):
			m, err := dm.ReadMapping(base)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
				continue
			}
			d.Kind, d.Name, d.UUID = DM, m.Name, m.UUID
		case strings.HasPrefix(k, "loop"):
			// loop/ exists only while a file is attached.
			backing, err := os.ReadFile(filepath.Join(base, "loop", "backing_file"))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
				continue
			}
			d.Kind, d.Name, d.Backing = Loop, k, strings.TrimSpace(string(backing))
		default:
			continue
		}
		holders, err := os.ReadDir(filepath.Join(base, "holders"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("%s holders: %w", k, err))
		}
		for _, h := range holders {
			d.Holders = append(d.Holders, h.Name())
		}
		out = append(out, d)
	}
	return out, errors.Join(errs...)
}

// RemovalOrder orders devs so that every device comes after the devices
// stacked on it (a LUKS mapping after the logical volumes of the volume
// group inside it, a loop device after the snapshot built on it), by
// rounds as a repeated "remove those without holders" would take them.
// Devices whose holders are not in devs (an MD array, say), or that hold
// each other, cannot be ordered and are returned as stuck.
func RemovalOrder(devs []BlockDev) (order, stuck []BlockDev) {
	left := map[string]BlockDev{}
	for _, d := range devs {
		left[d.Kernel] = d
	}
	removed := map[string]bool{}
	for len(left) > 0 {
		var round []BlockDev
		for _, d := range left {
			free := true
			for _, h := range d.Holders {
				if !removed[h] {
					free = false
					break
				}
			}
			if free {
				round = append(round, d)
			}
		}
		if len(round) == 0 {
			break
		}
		sort.Slice(round, func(i, j int) bool { return lessKernel(round[i].Kernel, round[j].Kernel) })
		for _, d := range round {
			removed[d.Kernel] = true
			delete(left, d.Kernel)
		}
		order = append(order, round...)
	}
	for _, d := range left {
		stuck = append(stuck, d)
	}
	sort.Slice(stuck, func(i, j int) bool { return lessKernel(stuck[i].Kernel, stuck[j].Kernel) })
	return order, stuck
}

// lessKernel orders kernel names dm-2 < dm-10 < loop0: device-mapper
// first (it may sit on loops), then numbers by value.
func lessKernel(a, b string) bool {
	pa, na := splitKernel(a)
	pb, nb := splitKernel(b)
	if pa != pb {
		return pa < pb
	}
	if na != nb {
		return na < nb
	}
	return a < b
}

func splitKernel(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	n := 0
	for _, c := range s[i:] {
		n = n*10 + int(c-'0')
	}
	return strings.TrimSuffix(s[:i], "-"), n
}
