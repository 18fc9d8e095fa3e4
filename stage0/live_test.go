package stage0

import (
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
)

func TestPlanLive(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string // step descriptions, in order (substrings)
	}{
		{"root=live:CDLABEL=X rd.live.image", []string{"wait up to 30s for the root device live:CDLABEL=X", "mount the live root from live:CDLABEL=X on /sysroot", "switch_root"}},
		{"root=live:LABEL=S rd.live.ram rd.break=pre-mount", []string{"wait", "rd.break=pre-mount", "copied to RAM", "switch_root"}},
		{"root=live:/srv/x.iso", []string{"use the live root live:/srv/x.iso"}},
		{"root=UUID=u rw systemd.volatile=overlay", []string{"wait", "fsck", "mount root UUID=u on /sysroot (type probed, ro)", "make the root an overlay", "switch_root"}},
		{"root=UUID=u rd.overlay=LABEL=P", []string{"mount root", "make the root an overlay: lower /run/rootfsbase, upper on LABEL=P", "switch_root"}},
	} {
		c := cmdline.Parse(tc.line)
		s, _ := settings(c, &bootconf.Config{})
		steps, _ := plan(s, c)
		var got []string
		for _, st := range steps {
			got = append(got, st.String())
		}
		i := 0
		for _, g := range got {
			if i < len(tc.want) && strings.Contains(g, tc.want[i]) {
				i++
			}
		}
		if i != len(tc.want) {
			t.Errorf("plan(%q) =\n  %s\nwant steps containing, in order, %q", tc.line, strings.Join(got, "\n  "), tc.want)
		}
	}
}
