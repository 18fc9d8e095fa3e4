package bootlog

import (
	"time"

	"golang.org/x/sys/unix"
)

// Uptime returns the time since boot on the clock the kernel's printk
// timestamps use (CLOCK_MONOTONIC), so stage0's lines line up with dmesg.
func Uptime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
