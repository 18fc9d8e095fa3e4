package stage0

import (
	"strings"

	"github.com/pkginitrd/pkginitrd/stage0/dm"
)

// leaveUdevRecords writes, for every device-mapper device present at
// switch_root (LUKS mappings, logical volumes, live snapshots, ones made in
// the shell), the udev database record an initramfs running udev would
// have left (dm.UdevRecord). The real root's udev then treats them as set
// up: links, SYSTEMD_READY=1, and 69-lvm.rules' pvscan activates the rest
// of their volume groups (a swap volume the command line did not name).
// Failures only cost the real root a device timeout, so they are logged.
func (b *boot) leaveUdevRecords() {
	maps, err := b.sys.Mappings()
	if err != nil {
		b.log.Warn("cannot list device-mapper devices; the real root's udev may not treat them as ready", "err", err)
		return
	}
	var done []string
	for _, m := range maps {
		file, data, err := dm.UdevRecord(m)
		if err == nil {
			err = b.sys.WriteFile(file, data)
		}
		if err != nil {
			b.log.Warn("cannot leave a udev database record; the real root's udev may not treat the device as ready", "device", m.Name, "err", err)
			continue
		}
		done = append(done, m.Name+"="+m.Dev)
	}
	if len(done) > 0 {
		b.log.Info("left udev database records for the device-mapper devices", "dir", dm.UdevDataDir, "devices", strings.Join(done, " "))
	}
}
