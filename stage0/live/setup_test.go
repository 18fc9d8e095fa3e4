package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/blkid"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
	"github.com/pkginitrd/pkginitrd/stage0/mount"
)

// fakeSys records Setup's side effects; files lists the paths that exist
// and what Probe finds in them.
type fakeSys struct {
	calls   []string
	files   map[string]*blkid.Info
	mounted map[string]bool
}

type closer struct{ f *fakeSys }

func (c closer) Close() error { c.f.calls = append(c.f.calls, "release loop0"); return nil }

func (f *fakeSys) system() machine.Machine {
	if f.mounted == nil {
		f.mounted = map[string]bool{}
	}
	rec := func(format string, args ...any) { f.calls = append(f.calls, fmt.Sprintf(format, args...)) }
	return machine.Machine{
		Mount: func(m mount.Mount) error {
			rec("mount %s", m)
			f.mounted[m.Target] = true
			return nil
		},
		Unmount:      func(t string, _ int) error { rec("umount %s", t); delete(f.mounted, t); return nil },
		IsMountPoint: func(d string) (bool, error) { return f.mounted[d], nil },
		Attach: func(file string, bs uint32) (string, io.Closer, error) {
			rec("attach %s", file)
			return "/dev/loop0", closer{f}, nil
		},
		MkdirAll: func(d string) error { rec("mkdir %s", d); return nil },
		Exists:   func(p string) bool { _, ok := f.files[p]; return ok },
		Probe: func(p string) (*blkid.Info, error) {
			if i := f.files[p]; i != nil {
				return i, nil
			}
			return nil, blkid.ErrUnknown
		},
		CopyVerified: func(_ context.Context, dst, src string) (int64, error) {
			rec("copy %s to %s", src, dst)
			return 1, nil
		},
	}
}

var (
	squash = &blkid.Info{Type: "squashfs", Usage: blkid.UsageFilesystem}
	iso    = device.Device{Name: "sr0", Node: "/dev/sr0", Info: &blkid.Info{Type: "iso9660", Usage: blkid.UsageFilesystem, Label: "LIVE", UUID: "2024-01-02-03-04-05-00"}}
	ext4   = device.Device{Name: "vda1", Node: "/dev/vda1", Info: &blkid.Info{Type: "ext4", Usage: blkid.UsageFilesystem, Label: "P", UUID: "u1"}}
)

func newSetup(f *fakeSys, devs ...device.Device) *Setup {
	return &Setup{
		Sys: f.system(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Load: func(ctx context.Context, names ...string) {
			f.calls = append(f.calls, "load "+strings.Join(names, " "))
		},
		Wait: func(_ context.Context, ref cmdline.DeviceRef) (*device.Device, error) {
			if m := device.Find(devs, ref); len(m) > 0 {
				return m[0], nil
			}
			return nil, errors.New("timed out")
		},
	}
}

func mounts(calls []string) []string {
	var out []string
	for _, c := range calls {
		if strings.HasPrefix(c, "mount ") || strings.HasPrefix(c, "umount ") || strings.HasPrefix(c, "copy ") || strings.HasPrefix(c, "attach ") {
			out = append(out, c)
		}
	}
	return out
}

func TestSetupLive(t *testing.T) {
	for _, tc := range []struct {
		name   string
		line   string
		medium device.Device
		devs   []device.Device
		files  map[string]*blkid.Info
		want   []string
	}{
		{"iso", "root=live:CDLABEL=LIVE rd.live.overlay.size=64", iso, nil,
			map[string]*blkid.Info{"/run/initramfs/live/LiveOS/squashfs.img": squash},
			[]string{
				"mount /dev/sr0 on /run/initramfs/live type iso9660 (ro)",
				"attach /run/initramfs/live/LiveOS/squashfs.img",
				"mount /dev/loop0 on /run/rootfsbase type squashfs (ro)",
				"mount tmpfs on /run/initramfs/overlay type tmpfs (nosuid,nodev,mode=0755,size=64m)",
				"mount LiveOS_rootfs on /sysroot type overlay (lowerdir=/run/rootfsbase,upperdir=/run/initramfs/overlay/upper,workdir=/run/initramfs/overlay/work)",
			}},
		{"top-level-fallback", "root=live:LABEL=THIS-LAND rd.live.squashimg=root-fs.squashfs", ext4, nil,
			map[string]*blkid.Info{"/run/initramfs/live/root-fs.squashfs": squash},
			[]string{
				"mount /dev/vda1 on /run/initramfs/live type ext4 (ro)",
				"attach /run/initramfs/live/root-fs.squashfs",
				"mount /dev/loop0 on /run/rootfsbase type squashfs (ro)",
				"mount tmpfs on /run/initramfs/overlay type tmpfs (nosuid,nodev,mode=0755)",
				"mount LiveOS_rootfs on /sysroot type overlay (lowerdir=/run/rootfsbase,upperdir=/run/initramfs/overlay/upper,workdir=/run/initramfs/overlay/work)",
			}},
		{"ram", "root=live:CDLABEL=LIVE rd.live.ram", iso, nil,
			map[string]*blkid.Info{"/run/initramfs/live/LiveOS/squashfs.img": squash},
			[]string{
				"mount /dev/sr0 on /run/initramfs/live type iso9660 (ro)",
				"copy /run/initramfs/live/LiveOS/squashfs.img to /run/initramfs/squashed.img",
				"umount /run/initramfs/live",
				"attach /run/initramfs/squashed.img",
				"mount /dev/loop0 on /run/rootfsbase type squashfs (ro)",
				"mount tmpfs on /run/initramfs/overlay type tmpfs (nosuid,nodev,mode=0755)",
				"mount LiveOS_rootfs on /sysroot type overlay (lowerdir=/run/rootfsbase,upperdir=/run/initramfs/overlay/upper,workdir=/run/initramfs/overlay/work)",
			}},
		{"persistent", "root=live:CDLABEL=LIVE rd.live.overlay=LABEL=P", iso, []device.Device{ext4},
			map[string]*blkid.Info{"/run/initramfs/live/LiveOS/squashfs.img": squash},
			[]string{
				"mount /dev/sr0 on /run/initramfs/live type iso9660 (ro)",
				"attach /run/initramfs/live/LiveOS/squashfs.img",
				"mount /dev/loop0 on /run/rootfsbase type squashfs (ro)",
				"mount /dev/vda1 on /run/initramfs/overlayfs type ext4 (rw)",
				"mount LiveOS_rootfs on /sysroot type overlay (lowerdir=/run/rootfsbase,upperdir=/run/initramfs/overlayfs/LiveOS/overlay-LIVE-2024-01-02-03-04-05-00,workdir=/run/initramfs/overlayfs/LiveOS/ovlwork)",
			}},
		{"persistent-on-medium", "root=live:LABEL=P rd.live.overlay=LABEL=P:/upper", ext4, []device.Device{ext4},
			map[string]*blkid.Info{"/run/initramfs/live/LiveOS/squashfs.img": squash},
			[]string{
				"mount /dev/vda1 on /run/initramfs/live type ext4 (rw)",
				"attach /run/initramfs/live/LiveOS/squashfs.img",
				"mount /dev/loop0 on /run/rootfsbase type squashfs (ro)",
				"mount LiveOS_rootfs on /sysroot type overlay (lowerdir=/run/rootfsbase,upperdir=/run/initramfs/live/upper,workdir=/run/initramfs/live/ovlwork)",
			}},
		{"squashfs-medium", "root=live:/dev/vdb", device.Device{Name: "vdb", Node: "/dev/vdb", Info: squash}, nil, nil,
			[]string{
				"mount /dev/vdb on /run/rootfsbase type squashfs (ro)",
				"mount tmpfs on /run/initramfs/overlay type tmpfs (nosuid,nodev,mode=0755)",
				"mount LiveOS_rootfs on /sysroot type overlay (lowerdir=/run/rootfsbase,upperdir=/run/initramfs/overlay/upper,workdir=/run/initramfs/overlay/work)",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSys{files: tc.files}
			p, err := Parse(cmdline.Parse(tc.line))
			if err != nil {
				t.Fatal(err)
			}
			if err := newSetup(f, tc.devs...).Live(context.Background(), p, &tc.medium, "/sysroot"); err != nil {
				t.Fatalf("Live(%q) error %v; calls %q", tc.line, err, f.calls)
			}
			if got := mounts(f.calls); !equal(got, tc.want) {
				t.Errorf("Live(%q) did\n  %s\nwant\n  %s", tc.line, strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			// The loop device is held until the image is mounted.
			attach, release, lower := index(f.calls, "attach "), index(f.calls, "release loop0"), index(f.calls, "mount /dev/loop0")
			if attach >= 0 && !(attach < lower && lower < release) {
				t.Errorf("calls %q: want attach, mount, release in that order", f.calls)
			}
			// A second run (after the emergency shell) does nothing.
			f.calls = nil
			if err := newSetup(f, tc.devs...).Live(context.Background(), p, &tc.medium, "/sysroot"); err != nil || len(mounts(f.calls)) != 0 {
				t.Errorf("second Live(%q) = %v, calls %q; want nothing done", tc.line, err, f.calls)
			}
		})
	}
}

func TestSetupLiveErrors(t *testing.T) {
	img := "/run/initramfs/live/LiveOS/squashfs.img"
	for _, tc := range []struct {
		name  string
		line  string
		files map[string]*blkid.Info
		want  string
	}{
		{"missing", "root=live:CDLABEL=LIVE", nil,
			"live image squashfs.img not found on the live medium /dev/sr0 (live:CDLABEL=LIVE, mounted on /run/initramfs/live); looked for /run/initramfs/live/LiveOS/squashfs.img, /run/initramfs/live/squashfs.img"},
		{"corrupt", "root=live:CDLABEL=LIVE", map[string]*blkid.Info{img: nil},
			"live image " + img + " is not a squashfs image"},
		{"not-a-filesystem", "root=live:CDLABEL=LIVE", map[string]*blkid.Info{img: {Type: "crypto_LUKS", Usage: blkid.UsageCrypto}},
			"live image " + img + " holds crypto_LUKS"},
		{"overlay-device-missing", "root=live:CDLABEL=LIVE rd.live.overlay=LABEL=NOPE", map[string]*blkid.Info{img: squash},
			"persistent overlay device LABEL=NOPE: timed out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSys{files: tc.files}
			p, _ := Parse(cmdline.Parse(tc.line))
			medium := iso
			err := newSetup(f).Live(context.Background(), p, &medium, "/sysroot")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Live(%q) error = %v, want one containing %q", tc.line, err, tc.want)
			}
		})
	}
}

func TestSetupOverlay(t *testing.T) {
	for _, tc := range []struct {
		line string
		devs []device.Device
		want []string
	}{
		{"root=UUID=u systemd.volatile=overlay", nil, []string{
			"mount /sysroot on /run/rootfsbase type  (rw)",
			"mount tmpfs on /run/initramfs/overlay type tmpfs (nosuid,nodev,mode=0755)",
			"mount overlay on /sysroot type overlay (lowerdir=/run/rootfsbase,upperdir=/run/initramfs/overlay/upper,workdir=/run/initramfs/overlay/work)",
		}},
		{"root=UUID=u rd.overlay=LABEL=P", []device.Device{ext4}, []string{
			"mount /sysroot on /run/rootfsbase type  (rw)",
			"mount /dev/vda1 on /run/initramfs/overlayfs type ext4 (rw)",
			"mount overlay on /sysroot type overlay (lowerdir=/run/rootfsbase,upperdir=/run/initramfs/overlayfs/LiveOS/overlay-root-u2,workdir=/run/initramfs/overlayfs/LiveOS/ovlwork)",
		}},
	} {
		f := &fakeSys{}
		p, _ := Parse(cmdline.Parse(tc.line))
		s := newSetup(f, tc.devs...)
		f.mounted["/sysroot"] = true
		root := device.Device{Node: "/dev/vda2", Info: &blkid.Info{Type: "ext4", Usage: blkid.UsageFilesystem, Label: "root", UUID: "u2"}}
		if err := s.Overlay(context.Background(), p, &root, "/sysroot"); err != nil {
			t.Fatalf("Overlay(%q): %v", tc.line, err)
		}
		if got := mounts(f.calls); !equal(got, tc.want) {
			t.Errorf("Overlay(%q) did\n  %s\nwant\n  %s", tc.line, strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
		}
	}
}

func TestCopyVerified(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "squashfs.img")
	data := bytes.Repeat([]byte("pkginitrd live image "), 100000)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "squashed.img")
	n, err := CopyVerified(context.Background(), dst, src)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("CopyVerified = %d, %v; want %d, nil", n, err, len(data))
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Errorf("CopyVerified: copy differs from the source")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dst2 := filepath.Join(dir, "cancelled.img")
	if _, err := CopyVerified(ctx, dst2, src); !errors.Is(err, context.Canceled) {
		t.Errorf("CopyVerified(cancelled) error = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(dst2); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CopyVerified(cancelled) left %s behind", dst2)
	}
	if _, err := CopyVerified(context.Background(), filepath.Join(dir, "x"), filepath.Join(dir, "missing.img")); err == nil || !strings.Contains(err.Error(), "missing.img") {
		t.Errorf("CopyVerified(missing source) error = %v, want it to name the file", err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func index(calls []string, prefix string) int {
	for i, c := range calls {
		if strings.HasPrefix(c, prefix) {
			return i
		}
	}
	return -1
}
