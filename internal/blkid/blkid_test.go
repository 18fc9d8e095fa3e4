package blkid

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

func run(t *testing.T, stdin string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// sparse creates an empty sparse file of size bytes.
func sparse(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return p
}

// blkidExport runs `blkid -p -o export` (low-level probing, no cache) on path.
func blkidExport(t *testing.T, path string) map[string]string {
	t.Helper()
	bin := testenv.NeedTool(t, "blkid", "util-linux")
	out, err := exec.Command(bin, "-p", "-o", "export", path).Output()
	if err != nil {
		t.Fatalf("blkid -p -o export %s: %v", path, err)
	}
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			// export format escapes blanks and shell specials with '\'.
			m[k] = strings.NewReplacer(`\ `, " ", `\\`, `\`).Replace(v)
		}
	}
	return m
}

func probeFile(t *testing.T, path string) (*Info, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Probe(f)
}

// compare checks Probe against blkid for every field blkid reports.
func compare(t *testing.T, name, path string) *Info {
	t.Helper()
	want := blkidExport(t, path)
	got, err := probeFile(t, path)
	if err != nil {
		t.Fatalf("%s: Probe = %v, want TYPE=%s (blkid: %v)", name, err, want["TYPE"], want)
	}
	for _, f := range []struct {
		key string
		got string
	}{
		{"TYPE", got.Type}, {"USAGE", got.Usage}, {"UUID", got.UUID}, {"UUID_SUB", got.UUIDSub},
		{"LABEL", got.Label}, {"LABEL_FATBOOT", got.LabelFATBoot}, {"VERSION", got.Version},
	} {
		if f.got != want[f.key] {
			t.Errorf("%s: Probe().%s = %q, want %q (blkid -p: %v)", name, f.key, f.got, want[f.key], want)
		}
	}
	return got
}

func TestProbeRealImages(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name string
		size int64
		tool string
		pkg  string
		// mk builds the image at p.
		mk func(t *testing.T, tool, p string)
		// wantType guards against blkid and Probe agreeing on nothing.
		wantType, wantUUID, wantLabel string
	}{
		{"ext4", 32 * mib, "mkfs.ext4", "e2fsprogs", func(t *testing.T, tool, p string) {
			run(t, "", tool, "-q", "-F", "-U", "3a1f5f0e-7a0e-4f0b-9d55-0a6c6c1f2b11", "-L", "rootfs", p)
		}, "ext4", "3a1f5f0e-7a0e-4f0b-9d55-0a6c6c1f2b11", "rootfs"},
		{"ext3", 32 * mib, "mkfs.ext3", "e2fsprogs", func(t *testing.T, tool, p string) {
			run(t, "", tool, "-q", "-F", "-U", "4a1f5f0e-7a0e-4f0b-9d55-0a6c6c1f2b12", p)
		}, "ext3", "4a1f5f0e-7a0e-4f0b-9d55-0a6c6c1f2b12", ""},
		{"ext2", 8 * mib, "mkfs.ext2", "e2fsprogs", func(t *testing.T, tool, p string) {
			run(t, "", tool, "-q", "-F", "-L", "boot", "-U", "5a1f5f0e-7a0e-4f0b-9d55-0a6c6c1f2b13", p)
		}, "ext2", "5a1f5f0e-7a0e-4f0b-9d55-0a6c6c1f2b13", "boot"},
		{"ext4 no journal", 32 * mib, "mkfs.ext4", "e2fsprogs", func(t *testing.T, tool, p string) {
			run(t, "", tool, "-q", "-F", "-O", "^has_journal", "-U", "6a1f5f0e-7a0e-4f0b-9d55-0a6c6c1f2b14", p)
		}, "ext4", "6a1f5f0e-7a0e-4f0b-9d55-0a6c6c1f2b14", ""},
		{"xfs", 320 * mib, "mkfs.xfs", "xfsprogs", func(t *testing.T, tool, p string) {
			run(t, "", tool, "-q", "-f", "-m", "uuid=7b2c9d4e-1111-4222-8333-944455556666", "-L", "xfsroot", p)
		}, "xfs", "7b2c9d4e-1111-4222-8333-944455556666", "xfsroot"},
		{"btrfs", 128 * mib, "mkfs.btrfs", "btrfs-progs", func(t *testing.T, tool, p string) {
			run(t, "", tool, "-q", "-f", "-U", "8c3d0e5f-2222-4333-9444-a55566667777", "-L", "my btrfs", p)
		}, "btrfs", "8c3d0e5f-2222-4333-9444-a55566667777", "my btrfs"},
		{"vfat FAT32", 64 * mib, "mkfs.vfat", "dosfstools", func(t *testing.T, tool, p string) {
			run(t, "", tool, "-F", "32", "-i", "1234ABCD", "-n", "EFI", p)
		}, "vfat", "1234-ABCD", "EFI"},
		{"vfat FAT16", 32 * mib, "mkfs.vfat", "dosfstools", func(t *testing.T, tool, p string) {
			run(t, "", tool, "-F", "16", "-i", "0000BEEF", "-n", "DATA16", p)
		}, "vfat", "0000-BEEF", "DATA16"},
		{"vfat FAT12 no label", 2 * mib, "mkfs.vfat", "dosfstools", func(t *testing.T, tool, p string) {
			run(t, "", tool, "-F", "12", "-i", "cafe0001", p)
		}, "vfat", "CAFE-0001", ""},
		{"squashfs", 0, "mksquashfs", "squashfs-tools", func(t *testing.T, tool, p string) {
			src := t.TempDir()
			if err := os.WriteFile(filepath.Join(src, "hello"), []byte("hi"), 0o644); err != nil {
				t.Fatal(err)
			}
			run(t, "", tool, src, p, "-noappend", "-quiet", "-no-progress")
		}, "squashfs", "", ""},
		{"iso9660 plain", 0, "xorriso", "xorriso", func(t *testing.T, tool, p string) {
			src := t.TempDir()
			run(t, "", tool, "-as", "mkisofs", "-quiet", "-V", "PLAIN_ISO", "-o", p, src)
		}, "iso9660", "", "PLAIN_ISO"},
		{"iso9660 joliet long label", 0, "xorriso", "xorriso", func(t *testing.T, tool, p string) {
			src := t.TempDir()
			run(t, "", tool, "-as", "mkisofs", "-quiet", "-J", "-V", "Debian 12 live amd64 extra long", "-o", p, src)
		}, "iso9660", "", "Debian 12 live amd64 extra long"},
		{"swap", 16 * mib, "mkswap", "util-linux", func(t *testing.T, tool, p string) {
			run(t, "", tool, "-U", "9d4e1f60-3333-4444-a555-b66677778888", "-L", "swp", p)
		}, "swap", "9d4e1f60-3333-4444-a555-b66677778888", "swp"},
		// A hibernation image: the kernel replaces the signature at the end
		// of the first page with S1SUSPEND and keeps the v1 header.
		{"swap with a hibernation image", 16 * mib, "mkswap", "util-linux", func(t *testing.T, tool, p string) {
			run(t, "", tool, "-U", "9d4e1f60-3333-4444-a555-b66677778889", "-L", "hib", p)
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte("S1SUSPEND\x00"), 4096-10); err != nil {
				t.Fatal(err)
			}
		}, "swsuspend", "9d4e1f60-3333-4444-a555-b66677778889", "hib"},
		{"luks2", 20 * mib, "cryptsetup", "cryptsetup-bin", func(t *testing.T, tool, p string) {
			run(t, "pw", tool, "luksFormat", "-q", "--type", "luks2", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
				"--label", "cryptroot", "--uuid", "0e5f2a71-4444-4555-b666-c77788889999", "--key-file", "-", p)
		}, "crypto_LUKS", "0e5f2a71-4444-4555-b666-c77788889999", "cryptroot"},
		{"luks2 primary header wiped", 20 * mib, "cryptsetup", "cryptsetup-bin", func(t *testing.T, tool, p string) {
			run(t, "pw", tool, "luksFormat", "-q", "--type", "luks2", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
				"--label", "damaged", "--uuid", "2a7b4c93-6666-4777-8888-e9990000bbbb", "--key-file", "-", p)
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(make([]byte, 4096), 0); err != nil {
				t.Fatal(err)
			}
		}, "crypto_LUKS", "2a7b4c93-6666-4777-8888-e9990000bbbb", "damaged"},
		{"luks1", 20 * mib, "cryptsetup", "cryptsetup-bin", func(t *testing.T, tool, p string) {
			run(t, "pw", tool, "luksFormat", "-q", "--type", "luks1", "--pbkdf-force-iterations", "1000",
				"--uuid", "1f6a3b82-5555-4666-8777-d8889999aaaa", "--key-file", "-", p)
		}, "crypto_LUKS", "1f6a3b82-5555-4666-8777-d8889999aaaa", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tool := testenv.NeedTool(t, tc.tool, tc.pkg)
			var p string
			if tc.size > 0 {
				p = sparse(t, tc.size)
			} else {
				p = filepath.Join(t.TempDir(), "img")
			}
			tc.mk(t, tool, p)
			got := compare(t, tc.name, p)
			if got.Type != tc.wantType || (tc.wantUUID != "" && got.UUID != tc.wantUUID) || got.Label != tc.wantLabel {
				t.Errorf("Probe(%s) = %+v, want type %s UUID %s label %q", tc.name, got, tc.wantType, tc.wantUUID, tc.wantLabel)
			}
		})
	}
}

// TestProbeLVM2 needs a loop device: pvcreate refuses regular files.
func TestProbeLVM2(t *testing.T) {
	testenv.NeedRoot(t, "a loop device for pvcreate")
	pvcreate := testenv.NeedTool(t, "pvcreate", "lvm2")
	losetup := testenv.NeedTool(t, "losetup", "mount")
	p := sparse(t, 16<<20)
	out, err := exec.Command(losetup, "-f", "--show", p).Output()
	if err != nil {
		t.Fatalf("losetup -f --show %s: %v (the LVM test needs root and a loop device)", p, err)
	}
	loop := strings.TrimSpace(string(out))
	defer exec.Command(losetup, "-d", loop).Run()
	run(t, "", pvcreate, "-q", "-ff", "-y", "--config", "devices{use_devicesfile=0}", "-u", "GAGqNs-v3q2-WwUD-qJo1-VFIR-WhEN-4C44AO", "--norestorefile", loop)
	got := compare(t, "lvm2", p)
	if got.Type != "LVM2_member" || got.UUID != "GAGqNs-v3q2-WwUD-qJo1-VFIR-WhEN-4C44AO" {
		t.Errorf("Probe(pv) = %+v, want LVM2_member GAGqNs-v3q2-WwUD-qJo1-VFIR-WhEN-4C44AO", got)
	}
}

// TestVFATBootLabelOnly removes the root-directory label entry from a real
// FAT image: blkid then reports only LABEL_FATBOOT.
func TestVFATBootLabelOnly(t *testing.T) {
	tool := testenv.NeedTool(t, "mkfs.vfat", "dosfstools")
	p := sparse(t, 32<<20)
	run(t, "", tool, "-F", "16", "-n", "BOOTONLY", p)
	img, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(img[512:], []byte("BOOTONLY   \x08"))
	if i < 0 {
		t.Fatal("mkfs.vfat -n wrote no root-directory label entry")
	}
	copy(img[512+i:], make([]byte, 32))
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	got := compare(t, "vfat boot label only", p)
	if got.Label != "" || got.LabelFATBoot != "BOOTONLY" {
		t.Errorf("Probe = %+v, want no LABEL and LABEL_FATBOOT BOOTONLY", got)
	}
}

func TestProbeUnknown(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"zeros", make([]byte, 1<<20)},
		{"short ext magic", append(make([]byte, 0x438), 0x53, 0xEF)},
		{"xfs magic only", []byte("XFSB")},
	} {
		if got, err := Probe(bytes.NewReader(tc.data)); !errors.Is(err, ErrUnknown) {
			t.Errorf("Probe(%s) = %+v, %v; want ErrUnknown", tc.name, got, err)
		}
	}
}

func FuzzProbe(f *testing.F) {
	f.Add([]byte("XFSB"))
	f.Add(append(make([]byte, 0x438), 0x53, 0xEF))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Probe(bytes.NewReader(b))
	})
}

func BenchmarkProbeExt4(b *testing.B) {
	p := filepath.Join(b.TempDir(), "img")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	f.Truncate(32 << 20)
	f.Close()
	if out, err := exec.Command(testenv.NeedTool(b, "mkfs.ext4", "e2fsprogs"), "-q", "-F", p).CombinedOutput(); err != nil {
		b.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	img, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	r := bytes.NewReader(img)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Probe(r); err != nil {
			b.Fatal(err)
		}
	}
}
