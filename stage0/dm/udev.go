package dm

import (
	"fmt"
	"path"
	"regexp"
)

// UdevDataDir is where udevd keeps its database; it is on /run, which the
// real root's systemd takes over at switch_root.
const UdevDataDir = "/run/udev/data"

// udevRecord is the record that makes the real root's dm rules
// (55-dm.rules, upstream 10-dm.rules) take the activation path on the
// coldplug "add" event of a device-mapper device set up without udev:
// with no record they import no DM_UDEV_PRIMARY_SOURCE_FLAG, set the
// "disable" flags, and the device stays SYSTEMD_READY=0, without by-uuid
// links and without pvscan (so the rest of its volume group is never
// activated). No DM_UDEV_DISABLE_* or DM_NOSCAN line: the rules import
// those too.
const udevRecord = "E:DM_UDEV_PRIMARY_SOURCE_FLAG=1\n"

var devNumber = regexp.MustCompile(`^[0-9]+:[0-9]+$`)

// UdevRecord returns the udev database file for the mapping m
// ("/run/udev/data/b253:0") and its contents, as an initramfs running
// udev would have left it.
func UdevRecord(m Mapping) (file string, data []byte, err error) {
	if !devNumber.MatchString(m.Dev) {
		return "", nil, fmt.Errorf("device-mapper device %s (%s): no device number (dev = %q)", m.Name, m.Kernel, m.Dev)
	}
	return path.Join(UdevDataDir, "b"+m.Dev), []byte(udevRecord), nil
}
