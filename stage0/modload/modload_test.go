package modload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pkginitrd/pkginitrd/internal/kmod"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
)

// testIndex is a slice of the real Debian 6.1 dependency graph.
func testIndex() *kmod.Index {
	dep := func(p string, deps ...string) kmod.Dep { return kmod.Dep{Path: p, Deps: deps} }
	return kmod.NewIndex(kmod.IndexFiles{
		Dep: []kmod.Dep{
			dep("kernel/drivers/virtio/virtio_pci.ko", "kernel/drivers/virtio/virtio_pci_legacy_dev.ko", "kernel/drivers/virtio/virtio_pci_modern_dev.ko", "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko"),
			dep("kernel/drivers/virtio/virtio_pci_legacy_dev.ko"),
			dep("kernel/drivers/virtio/virtio_pci_modern_dev.ko"),
			dep("kernel/drivers/virtio/virtio_ring.ko"),
			dep("kernel/drivers/virtio/virtio.ko"),
			dep("kernel/drivers/block/virtio_blk.ko", "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko"),
			dep("kernel/fs/ext4/ext4.ko", "kernel/lib/crc16.ko", "kernel/fs/mbcache.ko", "kernel/fs/jbd2/jbd2.ko"),
			dep("kernel/lib/crc16.ko"),
			dep("kernel/fs/mbcache.ko"),
			dep("kernel/fs/jbd2/jbd2.ko"),
			dep("kernel/crypto/crc32c_generic.ko"),
			dep("kernel/drivers/gpu/drm/nouveau/nouveau.ko"),
		},
		Alias: []kmod.Alias{
			{Pattern: "pci:v00001AF4d*sv*sd*bc*sc*i*", Module: "virtio_pci"},
			{Pattern: "virtio:d00000002v*", Module: "virtio_blk"},
			{Pattern: "fs-ext4", Module: "ext4"},
			{Pattern: "crypto-crc32c", Module: "crc32c_generic"},
			{Pattern: "crc32c", Module: "crc32c_generic"},
			{Pattern: "pci:v000010DEd*sv*sd*bc03sc*i*", Module: "nouveau"},
		},
		SoftDep: []kmod.SoftDep{{Module: "ext4", Pre: []string{"crc32c"}}},
		Builtin: []string{"kernel/drivers/ata/libata.ko"},
	})
}

// recorder is a Machine that records loads and checks ordering.
type recorder struct {
	mu     sync.Mutex
	calls  []string // module names in call order
	params map[string]string
	fail   map[string]error
}

func (r *recorder) sys() machine.Machine {
	return machine.Machine{LoadModule: func(path, params string) error {
		name := kmod.NameFromPath(path)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls = append(r.calls, name)
		if r.params == nil {
			r.params = map[string]string{}
		}
		r.params[name] = params
		return r.fail[name]
	}}
}

func (r *recorder) index(name string) int {
	for i, c := range r.calls {
		if c == name {
			return i
		}
	}
	return -1
}

func TestLoadOrderAndOnce(t *testing.T) {
	rec := &recorder{fail: map[string]error{"crc16": fmt.Errorf("finit_module: %w", unix.EEXIST)}}
	l := New(Config{Index: testIndex(), Dir: "/usr/lib/modules/6.1.0-56-amd64", Sys: rec.sys(),
		Params: func(m string) string {
			if m == "virtio_blk" {
				return "queue_depth=64"
			}
			return ""
		}})
	ctx := context.Background()
	if err := l.LoadForAliases(ctx, "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", "pci:v00008086d00007010sv00000000sd00000000bc01sc01i80"); err != nil {
		t.Fatalf("LoadForAliases(virtio pci) = %v", err)
	}
	if err := l.LoadForAliases(ctx, "virtio:d00000002v00001AF4"); err != nil {
		t.Fatalf("LoadForAliases(virtio blk) = %v", err)
	}
	if err := l.Load(ctx, "fs-ext4", "virtio_blk", "libata"); err != nil {
		t.Fatalf("Load(fs-ext4, virtio_blk, libata) = %v", err)
	}
	// Hard and soft dependencies before their users.
	for _, before := range [][2]string{
		{"virtio", "virtio_pci"}, {"virtio_ring", "virtio_pci"}, {"virtio_pci_modern_dev", "virtio_pci"},
		{"virtio_pci_legacy_dev", "virtio_pci"}, {"virtio_pci", "virtio_blk"},
		{"jbd2", "ext4"}, {"mbcache", "ext4"}, {"crc16", "ext4"}, {"crc32c_generic", "ext4"},
	} {
		if i, j := rec.index(before[0]), rec.index(before[1]); i < 0 || j < 0 || i > j {
			t.Errorf("load order %v: %s loaded at %d, %s at %d; want the first earlier", rec.calls, before[0], i, before[1], j)
		}
	}
	got := append([]string(nil), rec.calls...)
	sort.Strings(got)
	want := []string{"crc16", "crc32c_generic", "ext4", "jbd2", "mbcache", "virtio", "virtio_blk", "virtio_pci", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_ring"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("loaded %v, want each of %v exactly once (libata is builtin)", got, want)
	}
	if rec.params["virtio_blk"] != "queue_depth=64" || rec.params["ext4"] != "" {
		t.Errorf("params = %v, want queue_depth=64 for virtio_blk only", rec.params)
	}
	if f := l.Failed(); len(f) != 0 {
		t.Errorf("Failed() = %v, want none (EEXIST is success)", f)
	}
	if n := len(l.Loaded()); n != len(want) {
		t.Errorf("Loaded() has %d modules, want %d", n, len(want))
	}
}

func TestLoadBlacklistAndErrors(t *testing.T) {
	boom := errors.New("Unknown symbol in module")
	rec := &recorder{fail: map[string]error{"jbd2": boom}}
	l := New(Config{Index: testIndex(), Dir: "/m", Sys: rec.sys(),
		Blacklisted: func(m string) bool { return m == "nouveau" || m == "virtio_blk" }})
	ctx := context.Background()
	if err := l.LoadForAliases(ctx, "pci:v000010DEd00001C82sv00001043sd00008613bc03sc00i00"); err != nil {
		t.Errorf("LoadForAliases(blacklisted nouveau) = %v, want nil", err)
	}
	if err := l.Load(ctx, "virtio-blk"); err != nil {
		t.Errorf("Load(blacklisted virtio-blk) = %v, want nil", err)
	}
	if len(rec.calls) != 0 {
		t.Errorf("blacklisted modules loaded: %v", rec.calls)
	}
	err := l.Load(ctx, "ext4", "no_such_module")
	var me *ModuleError
	if !errors.As(err, &me) || me.Module != "jbd2" || !errors.Is(err, boom) {
		t.Errorf("Load(ext4) = %v, want a ModuleError for jbd2", err)
	}
	if !strings.Contains(fmt.Sprint(err), "no_such_module") {
		t.Errorf("Load(no_such_module) error %v does not name the module", err)
	}
	// ext4 is still tried: the kernel decides whether the missing
	// dependency matters.
	if rec.index("ext4") < 0 {
		t.Errorf("ext4 not tried after jbd2 failed: %v", rec.calls)
	}
	if f := l.Failed(); len(f) != 1 || f[0].Module != "jbd2" {
		t.Errorf("Failed() = %v, want jbd2", f)
	}
	// A failed module is not retried.
	n := len(rec.calls)
	if err := l.Load(ctx, "jbd2"); !errors.Is(err, boom) {
		t.Errorf("Load(jbd2) again = %v, want the first error", err)
	}
	if len(rec.calls) != n {
		t.Errorf("jbd2 retried: %v", rec.calls)
	}
}

// TestLoadParallel proves independent modules load concurrently: jbd2's
// load waits until mbcache's has started, which deadlocks (and times out)
// if loads are serial.
func TestLoadParallel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	started := make(chan struct{})
	var once sync.Once
	sys := machine.Machine{LoadModule: func(path, params string) error {
		switch kmod.NameFromPath(path) {
		case "mbcache":
			once.Do(func() { close(started) })
		case "jbd2":
			select {
			case <-started:
			case <-ctx.Done():
				return errors.New("mbcache never started while jbd2 was loading: loads are serial")
			}
		}
		return nil
	}}
	l := New(Config{Index: testIndex(), Dir: "/m", Sys: sys, Parallel: 2})
	if err := l.Load(ctx, "ext4"); err != nil {
		t.Fatalf("Load(ext4) = %v", err)
	}
}

func TestConcurrentCallersShareLoads(t *testing.T) {
	rec := &recorder{}
	l := New(Config{Index: testIndex(), Dir: "/m", Sys: rec.sys()})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Load(context.Background(), "ext4", "virtio_blk"); err != nil {
				t.Errorf("Load = %v", err)
			}
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for _, c := range rec.calls {
		seen[c]++
		if seen[c] > 1 {
			t.Errorf("%s loaded %d times", c, seen[c])
		}
	}
}

func TestModaliases(t *testing.T) {
	sys := t.TempDir()
	files := map[string]string{
		"devices/pci0000:00/0000:00:04.0/modalias":              "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00\n",
		"devices/pci0000:00/0000:00:04.0/virtio1/modalias":      "virtio:d00000002v00001AF4\n",
		"devices/pci0000:00/0000:00:05.0/modalias":              "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00\n",
		"devices/platform/serial8250/modalias":                  "platform:serial8250\n",
		"devices/platform/serial8250/tty/ttyS0/dev":             "4:64\n",
		"devices/pci0000:00/0000:00:04.0/virtio1/block/vda/dev": "254:0\n",
		"devices/virtual/empty/modalias":                        "",
	}
	for p, data := range files {
		full := filepath.Join(sys, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	// sysfs is full of links back up the tree; they must not be followed.
	if err := os.Symlink("../../..", filepath.Join(sys, "devices/pci0000:00/0000:00:04.0/virtio1/subsystem")); err != nil {
		t.Fatal(err)
	}
	got, err := Modaliases(sys)
	if err != nil {
		t.Fatalf("Modaliases = %v", err)
	}
	sort.Strings(got)
	want := []string{"pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", "platform:serial8250", "virtio:d00000002v00001AF4"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Modaliases = %q, want %q", got, want)
	}
	if _, err := Modaliases(filepath.Join(sys, "nope")); err == nil {
		t.Errorf("Modaliases(missing sysfs) = nil error")
	}
}

func TestErrnoClasses(t *testing.T) {
	for _, tc := range []struct {
		err          error
		exist, nodev bool
	}{
		{fmt.Errorf("finit_module x: %w", unix.EEXIST), true, false},
		{fmt.Errorf("finit_module x: %w", unix.ENODEV), false, true},
		{unix.ENXIO, false, true},
		{unix.ENOEXEC, false, false},
	} {
		if isExist(tc.err) != tc.exist || isNoDevice(tc.err) != tc.nodev {
			t.Errorf("isExist/isNoDevice(%v) = %v/%v, want %v/%v", tc.err, isExist(tc.err), isNoDevice(tc.err), tc.exist, tc.nodev)
		}
	}
}
