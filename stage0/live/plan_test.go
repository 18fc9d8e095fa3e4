package live

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
)

func TestParse(t *testing.T) {
	ref := func(k cmdline.RefKind, v string) cmdline.DeviceRef { return cmdline.DeviceRef{Kind: k, Value: v} }
	type want struct {
		mode       Mode
		medium     cmdline.DeviceRef
		candidates []string
		ram        bool
		upper      Upper
		warnings   int
	}
	for _, tc := range []struct {
		line string
		want want
	}{
		{"root=/dev/vda2", want{mode: Off, candidates: []string{"LiveOS/squashfs.img", "squashfs.img"}}},
		{"root=live:CDLABEL=Fedora-37 rd.live.image",
			want{mode: Image, medium: ref(cmdline.Label, "Fedora-37"), candidates: []string{"LiveOS/squashfs.img", "squashfs.img"}}},
		{"root=CDLABEL=X rd.live.image", want{mode: Image, medium: ref(cmdline.Label, "X"), candidates: []string{"LiveOS/squashfs.img", "squashfs.img"}}},
		{"root=UUID=1234 liveimg", want{mode: Image, medium: ref(cmdline.UUID, "1234"), candidates: []string{"LiveOS/squashfs.img", "squashfs.img"}}},
		{"root=live:/dev/sr0", want{mode: Image, medium: ref(cmdline.Path, "/dev/sr0"), candidates: []string{"LiveOS/squashfs.img", "squashfs.img"}}},
		{"root=live:LABEL=THIS-LAND rd.live.squashimg=root-fs.squashfs",
			want{mode: Image, medium: ref(cmdline.Label, "THIS-LAND"), candidates: []string{"LiveOS/root-fs.squashfs", "root-fs.squashfs"}}},
		{"root=live:LABEL=THIS-LAND rd.live.dir=/ rd.live.squashimg=/root-fs.squashfs",
			want{mode: Image, medium: ref(cmdline.Label, "THIS-LAND"), candidates: []string{"root-fs.squashfs"}}},
		{"root=live:LABEL=L rd.live.dir=/boot/live/ rd.live.ram=1 rd.live.overlay.size=512",
			want{mode: Image, medium: ref(cmdline.Label, "L"), candidates: []string{"boot/live/squashfs.img"}, ram: true, upper: Upper{TmpfsOptions: "size=512m"}}},
		{"root=live:LABEL=L rd.live.ram=0", want{mode: Image, medium: ref(cmdline.Label, "L"), candidates: []string{"LiveOS/squashfs.img", "squashfs.img"}}},
		{"root=live:LABEL=L rd.live.overlay=LABEL=P",
			want{mode: Image, medium: ref(cmdline.Label, "L"), candidates: []string{"LiveOS/squashfs.img", "squashfs.img"}, upper: Upper{Device: ref(cmdline.Label, "P")}}},
		{"root=live:LABEL=L rd.live.overlay=UUID=ab-cd:/persist/upper",
			want{mode: Image, medium: ref(cmdline.Label, "L"), candidates: []string{"LiveOS/squashfs.img", "squashfs.img"}, upper: Upper{Device: ref(cmdline.UUID, "ab-cd"), Path: "/persist/upper"}}},
		{"root=live:LABEL=L rd.overlay=LABEL=P:auto",
			want{mode: Image, medium: ref(cmdline.Label, "L"), candidates: []string{"LiveOS/squashfs.img", "squashfs.img"}, upper: Upper{Device: ref(cmdline.Label, "P")}}},
		{"root=live:LABEL=L rd.live.overlay.size=lots rd.live.check rd.overlay.readonly",
			want{mode: Image, medium: ref(cmdline.Label, "L"), candidates: []string{"LiveOS/squashfs.img", "squashfs.img"}, warnings: 3}},
		{"root=UUID=u systemd.volatile=overlay", want{mode: Overlay, candidates: []string{"LiveOS/squashfs.img", "squashfs.img"}}},
		{"root=UUID=u systemd.volatile=state", want{mode: Off, candidates: []string{"LiveOS/squashfs.img", "squashfs.img"}, warnings: 1}},
		{"root=UUID=u rd.overlay", want{mode: Overlay, candidates: []string{"LiveOS/squashfs.img", "squashfs.img"}}},
		{"root=UUID=u rd.overlay=tmpfs:size=16m,nr_inodes=1k",
			want{mode: Overlay, candidates: []string{"LiveOS/squashfs.img", "squashfs.img"}, upper: Upper{TmpfsOptions: "size=16m,nr_inodes=1k"}}},
		{"root=UUID=u rd.overlay=LABEL=P", want{mode: Overlay, candidates: []string{"LiveOS/squashfs.img", "squashfs.img"}, upper: Upper{Device: ref(cmdline.Label, "P")}}},
		{"root=UUID=u systemd.volatile=overlay rd.overlay=none", want{mode: Off, candidates: []string{"LiveOS/squashfs.img", "squashfs.img"}}},
		{"root=UUID=u rd.live.overlay=LABEL=P", want{mode: Off, candidates: []string{"LiveOS/squashfs.img", "squashfs.img"}, upper: Upper{Device: ref(cmdline.Label, "P")}}},
	} {
		p, err := Parse(cmdline.Parse(tc.line))
		if err != nil {
			t.Errorf("Parse(%q) error %v", tc.line, err)
			continue
		}
		p.Medium.Raw, p.Upper.Device.Raw = "", ""
		got := want{p.Mode, p.Medium, p.ImageCandidates(), p.Ram, p.Upper, len(p.Warnings)}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q) = %+v (warnings %q), want %+v", tc.line, got, p.Warnings, tc.want)
		}
	}
}

func TestParseMediumName(t *testing.T) {
	p, err := Parse(cmdline.Parse("root=CDLABEL=X rd.live.image"))
	if err != nil || p.Medium.String() != "live:CDLABEL=X" {
		t.Errorf("Parse(root=CDLABEL=X rd.live.image).Medium = %q, %v; want live:CDLABEL=X", p.Medium, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"root=live:/images/fedora.iso", "live images in files"},
		{"root=live:http://example.org/squashfs.img", "network live images are not supported"},
		{"root=live:FOO=bar", "unsupported device reference"},
	} {
		p, err := Parse(cmdline.Parse(tc.line))
		if err == nil || !strings.Contains(err.Error(), tc.want) || p.Mode != Image {
			t.Errorf("Parse(%q) = mode %s, error %v; want mode %s and an error containing %q", tc.line, p.Mode, err, Image, tc.want)
		}
	}
}

func TestUpperPath(t *testing.T) {
	for _, tc := range []struct {
		line, label, uuid, want string
	}{
		{"root=live:LABEL=L rd.live.overlay=LABEL=P", "PKGLIVE", "2024-01-02-03-04-05-00", "/LiveOS/overlay-PKGLIVE-2024-01-02-03-04-05-00"},
		{"root=live:LABEL=L rd.live.dir=/boot rd.live.overlay=LABEL=P", "My Disk", "u", "/boot/overlay-My_Disk-u"},
		{"root=live:LABEL=L rd.live.dir=/ rd.live.overlay=LABEL=P", "a/b", "u", "/LiveOS/overlay-a_b-u"},
		{"root=live:LABEL=L rd.live.overlay=LABEL=P:/upper", "x", "u", "/upper"},
		{"root=UUID=u rd.overlay=LABEL=P", "root", "u", "/LiveOS/overlay-root-u"},
	} {
		p, _ := Parse(cmdline.Parse(tc.line))
		if got := p.UpperPath(tc.label, tc.uuid); got != tc.want {
			t.Errorf("Parse(%q).UpperPath(%q, %q) = %q, want %q", tc.line, tc.label, tc.uuid, got, tc.want)
		}
	}
}
