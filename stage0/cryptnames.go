package stage0

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"strings"

	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/dm"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
)

// crypttabNamesStep renames the LUKS mappings stage0 opened (luks-UUID
// unless the image or the command line named them) to the names the real
// root's /etc/crypttab gives their containers. systemd-cryptsetup in the
// real root finds a volume already active only by that name; under another
// name it asks for the passphrase again and tries to open the container a
// second time.
type crypttabNamesStep struct{}

func (crypttabNamesStep) String() string {
	return "give the LUKS mappings the names of the root's /etc/crypttab"
}

func (crypttabNamesStep) Run(_ context.Context, b *boot) error {
	data, err := b.sys.ReadFile(newRoot + dm.CrypttabPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		b.log.Warn("cannot read the root's crypttab; keeping the LUKS mapping names", "err", err)
		return nil
	}
	entries, _ := dm.ParseCrypttab(bytes.NewReader(data)) // its other lines are the root's business
	maps, err := b.sys.Mappings()
	if err != nil {
		b.log.Warn("cannot list device-mapper devices; keeping the LUKS mapping names", "err", err)
		return nil
	}
	b.mu.Lock()
	devs := b.devs
	b.mu.Unlock()
	renamed := false
	for _, e := range entries {
		m := openedFor(e, devs, maps)
		if m == nil || m.Name == e.Name || hasMapping(maps, e.Name) {
			continue
		}
		if err := b.sys.RenameDM(m.Name, e.Name); err != nil {
			b.log.Warn("cannot rename a LUKS mapping to its crypttab name; systemd may ask for its passphrase again", "mapping", m.Name, "name", e.Name, "err", err)
			continue
		}
		b.log.Info("renamed a LUKS mapping to its name in the root's crypttab", "from", m.Name, "to", e.Name, "line", e.Line)
		m.Name, renamed = e.Name, true
	}
	if renamed {
		return b.linkMappings()
	}
	return nil
}

// openedFor returns the dm-crypt mapping of the LUKS container the
// crypttab entry names, or nil.
func openedFor(e dm.CrypttabEntry, devs []device.Device, maps []machine.Mapping) *machine.Mapping {
	d, err := device.Resolve(devRoot, devs, e.Device)
	if err != nil || d == nil || d.Info == nil || d.Info.Type != "crypto_LUKS" {
		return nil
	}
	return containerMapping(maps, d.Info.UUID)
}

// containerMapping returns the dm-crypt mapping of the LUKS container
// uuid, whatever its name, or nil: cryptsetup's dm uuids are
// "CRYPT-LUKS2-<uuid without dashes>-<name>".
func containerMapping(maps []machine.Mapping, uuid string) *machine.Mapping {
	id := "-" + strings.ReplaceAll(strings.ToLower(uuid), "-", "") + "-"
	for i := range maps {
		if strings.HasPrefix(maps[i].UUID, "CRYPT-LUKS") && strings.Contains(strings.ToLower(maps[i].UUID), id) {
			return &maps[i]
		}
	}
	return nil
}

func hasMapping(maps []machine.Mapping, name string) bool {
	for _, m := range maps {
		if m.Name == name {
			return true
		}
	}
	return false
}

var _ step = crypttabNamesStep{}
