package blkid

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

// partx lists what util-linux sees in the partition table of path, as
// Partitions (512-byte sectors).
func partx(t *testing.T, path string) []Partition {
	t.Helper()
	bin := testenv.NeedTool(t, "partx", "util-linux")
	out, err := exec.Command(bin, "-o", "NR,START,END,UUID,NAME,TYPE", "-P", path).Output()
	if err != nil {
		t.Fatalf("partx %s: %v", path, err)
	}
	var ps []Partition
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := map[string]string{}
		for _, kv := range strings.Fields(sc.Text()) {
			k, v, _ := strings.Cut(kv, "=")
			f[k] = strings.Trim(v, `"`)
		}
		// NAME may contain a blank; re-read it from the raw line.
		if i := strings.Index(sc.Text(), `NAME="`); i >= 0 {
			rest := sc.Text()[i+6:]
			f["NAME"] = unhex(rest[:strings.Index(rest, `"`)])
		}
		nr, _ := strconv.Atoi(f["NR"])
		start, _ := strconv.ParseUint(f["START"], 10, 64)
		end, _ := strconv.ParseUint(f["END"], 10, 64)
		ps = append(ps, Partition{Number: nr, FirstLBA: start, LastLBA: end, UUID: f["UUID"], Name: f["NAME"], Type: f["TYPE"]})
	}
	return ps
}

// unhex decodes partx's \xNN escapes of non-ASCII bytes.
func unhex(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func readTable(t *testing.T, path string, sectorSize int) (*Table, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return ReadPartitions(f, st.Size(), sectorSize)
}

// strip drops the fields partx does not print.
func strip(ps []Partition) []Partition {
	out := make([]Partition, len(ps))
	for i, p := range ps {
		p.Attrs = 0
		out[i] = p
	}
	return out
}

func TestReadPartitionsGPT(t *testing.T) {
	sgdisk := testenv.NeedTool(t, "sgdisk", "gdisk")
	p := sparse(t, 64<<20)
	run(t, "", sgdisk,
		"-U", "11223344-5566-4778-899a-abbccddeeff0",
		"-n", "1:2048:+8M", "-t", "1:ef00", "-c", "1:EFI System", "-u", "1:aaaaaaaa-bbbb-4ccc-9ddd-eeeeeeeeeeee",
		"-n", "2:0:+16M", "-t", "2:8304", "-c", "2:root fs", "-u", "2:6e2c3a1e-1111-4a2b-8c3d-0123456789ab",
		"-n", "4:0:0", "-c", "4:Grüße", p)
	want := partx(t, p)
	got, err := readTable(t, p, 512)
	if err != nil {
		t.Fatalf("ReadPartitions(sgdisk image) = %v", err)
	}
	if got.Type != "gpt" || got.UUID != "11223344-5566-4778-899a-abbccddeeff0" {
		t.Errorf("ReadPartitions: type %s UUID %s, want gpt 11223344-5566-4778-899a-abbccddeeff0", got.Type, got.UUID)
	}
	if !reflect.DeepEqual(strip(got.Partitions), want) {
		t.Errorf("ReadPartitions partitions =\n%+v\nwant (partx)\n%+v", got.Partitions, want)
	}
	if p2, ok := got.Find(2); !ok || p2.Name != "root fs" || p2.Type != "4f68bce3-e8cd-4db1-96e7-fbcaf984b709" {
		t.Errorf("Find(2) = %+v, %v; want root fs of the x86-64 root type", p2, ok)
	}
	if _, ok := got.Find(3); ok {
		t.Errorf("Find(3) found an unused entry")
	}

	// Destroy the primary header: the backup at the end must be used.
	img, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	copy(img[512:1024], make([]byte, 512))
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	backup, err := readTable(t, p, 512)
	if err != nil {
		t.Fatalf("ReadPartitions(primary header wiped) = %v", err)
	}
	if !reflect.DeepEqual(strip(backup.Partitions), want) {
		t.Errorf("ReadPartitions(backup) = %+v, want %+v", backup.Partitions, want)
	}
}

// TestReadPartitionsGPT4K partitions a loop device with 4096-byte logical
// sectors, so the GPT header sits at byte 4096.
func TestReadPartitionsGPT4K(t *testing.T) {
	testenv.NeedRoot(t, "a loop device with 4096-byte sectors")
	sgdisk := testenv.NeedTool(t, "sgdisk", "gdisk")
	losetup := testenv.NeedTool(t, "losetup", "mount")
	p := sparse(t, 64<<20)
	out, err := exec.Command(losetup, "-f", "--show", "--sector-size", "4096", p).Output()
	if err != nil {
		t.Fatalf("losetup --sector-size 4096 %s: %v (needs root and a loop device)", p, err)
	}
	loop := strings.TrimSpace(string(out))
	defer exec.Command(losetup, "-d", loop).Run()
	run(t, "", sgdisk, "-n", "1:256:+4M", "-c", "1:four k", "-u", "1:0a0b0c0d-0e0f-4011-8213-141516171819", loop)
	got, err := readTable(t, p, 4096)
	if err != nil {
		t.Fatalf("ReadPartitions(4K) = %v", err)
	}
	want := []Partition{{Number: 1, UUID: "0a0b0c0d-0e0f-4011-8213-141516171819", Name: "four k",
		Type: "0fc63daf-8483-4772-8e79-3d69d8477de4", FirstLBA: 256, LastLBA: 256 + 1024 - 1}}
	if !reflect.DeepEqual(got.Partitions, want) {
		t.Errorf("ReadPartitions(4K) = %+v, want %+v", got.Partitions, want)
	}
	if _, err := readTable(t, p, 512); err == nil {
		t.Errorf("ReadPartitions(4K disk, 512-byte sectors) found a table")
	}
}

func TestReadPartitionsMBR(t *testing.T) {
	sfdisk := testenv.NeedTool(t, "sfdisk", "fdisk")
	p := sparse(t, 40<<20)
	run(t, "label: dos\nlabel-id: 0x1234abcd\n,8M,83\n,8M,b,*\n,,5\n,4M,83\n,,83\n", sfdisk, "-q", p)
	want := partx(t, p)
	got, err := readTable(t, p, 512)
	if err != nil {
		t.Fatalf("ReadPartitions(sfdisk image) = %v", err)
	}
	if got.Type != "dos" || got.UUID != "1234abcd" {
		t.Errorf("ReadPartitions: type %s id %s, want dos 1234abcd", got.Type, got.UUID)
	}
	if !reflect.DeepEqual(strip(got.Partitions), want) {
		t.Errorf("ReadPartitions partitions =\n%+v\nwant (partx)\n%+v", got.Partitions, want)
	}
	if p6, ok := got.Find(6); !ok || p6.UUID != "1234abcd-06" {
		t.Errorf("Find(6) = %+v, %v; want PARTUUID 1234abcd-06", p6, ok)
	}
}

func TestReadPartitionsNone(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"zeros", make([]byte, 4096)},
		{"fat boot sector", fatLikeSector()},
	} {
		if got, err := ReadPartitions(bytes.NewReader(tc.data), int64(len(tc.data)), 512); !errors.Is(err, ErrNoPartitionTable) {
			t.Errorf("ReadPartitions(%s) = %+v, %v; want ErrNoPartitionTable", tc.name, got, err)
		}
	}
	if _, err := ReadPartitions(bytes.NewReader(nil), 0, 1000); err == nil {
		t.Errorf("ReadPartitions(sector size 1000) succeeded")
	}
}

// fatLikeSector is a boot sector whose "partition entries" are boot code.
func fatLikeSector() []byte {
	b := make([]byte, 512)
	copy(b[446:], []byte("boot code, not a table"))
	b[510], b[511] = 0x55, 0xAA
	return b
}

func FuzzReadPartitions(f *testing.F) {
	f.Add(fatLikeSector())
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ReadPartitions(bytes.NewReader(b), int64(len(b)), 512)
	})
}
