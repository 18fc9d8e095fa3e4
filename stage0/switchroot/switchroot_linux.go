package switchroot

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Filesystem magics (linux/magic.h) of an initramfs.
const (
	ramfsMagic = 0x858458f6
	tmpfsMagic = 0x01021994
)

// Options controls Switch.
type Options struct {
	NewRoot string   // mounted real root, e.g. /sysroot
	Init    string   // path of init inside NewRoot (from ResolveInit)
	Argv    []string // init's arguments, without argv[0]
	Env     []string // init's environment
	// Keep lists files that must be on the initramfs for it to be deleted
	// (e.g. /init and the stage0 config): a guard against deleting a
	// root that is not ours.
	Keep []string
	Log  *slog.Logger
}

// Switch makes NewRoot the root and execs its init, as util-linux
// switch_root(8) does:
//
//   - moves /dev, /proc, /sys and /run into NewRoot (MS_MOVE), detaching
//     any the new root has no directory for;
//   - DELETES EVERYTHING on the initramfs, without crossing into other
//     filesystems, to free its memory. Only when running as PID 1, the old
//     root is a ramfs or tmpfs on another device than NewRoot, and every
//     Keep file exists (booster's guard);
//   - moves NewRoot onto "/", chroots into it, reopens /dev/console as
//     stdin, stdout and stderr, and execs Init.
//
// It returns only on failure. After the deletion the initramfs is gone, so
// callers must have checked Init (ResolveInit) before.
func Switch(o Options) error {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var rootSt unix.Stat_t
	if err := unix.Stat(o.NewRoot, &rootSt); err != nil {
		return &os.PathError{Op: "switch_root: stat", Path: o.NewRoot, Err: err}
	}
	for _, dir := range []string{"/dev", "/proc", "/sys", "/run"} {
		moveMount(log, dir, filepath.Join(o.NewRoot, dir), rootSt.Dev)
	}
	if err := unix.Chdir(o.NewRoot); err != nil {
		return &os.PathError{Op: "switch_root: chdir", Path: o.NewRoot, Err: err}
	}
	if err := freeInitramfs(log, rootSt.Dev, o.Keep); err != nil {
		log.Warn("initramfs not freed", "err", err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return &os.PathError{Op: "switch_root: move mount", Path: o.NewRoot, Err: err}
	}
	if err := unix.Chroot("."); err != nil {
		return &os.PathError{Op: "switch_root: chroot", Path: o.NewRoot, Err: err}
	}
	if err := unix.Chdir("/"); err != nil {
		return &os.PathError{Op: "switch_root: chdir", Path: "/", Err: err}
	}
	if err := reopenConsole(); err != nil {
		log.Warn("cannot reopen /dev/console in the new root", "err", err)
	}
	argv := append([]string{o.Init}, o.Argv...)
	err := unix.Exec(o.Init, argv, o.Env)
	return &os.PathError{Op: "switch_root: exec", Path: o.Init, Err: err}
}

// moveMount moves the mount at dir to target if target is a directory on
// the new root; otherwise it lazily unmounts dir so nothing is left behind.
func moveMount(log *slog.Logger, dir, target string, newRootDev uint64) {
	var st unix.Stat_t
	if err := unix.Stat(target, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Dev != newRootDev {
		// Missing, not a directory, or already a mount point in the new
		// root: util-linux detaches the old mount.
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			log.Warn("switch_root: unmount", "dir", dir, "err", err)
		}
		return
	}
	if err := unix.Mount(dir, target, "", unix.MS_MOVE, ""); err != nil {
		log.Warn("switch_root: move failed, forcing unmount", "from", dir, "to", target, "err", err)
		_ = unix.Unmount(dir, unix.MNT_FORCE)
	}
}

// freeInitramfs deletes the contents of "/" that are on the root device
// (not newRootDev, not any other mount), after checking the guards.
func freeInitramfs(log *slog.Logger, newRootDev uint64, keep []string) error {
	if os.Getpid() != 1 {
		return errors.New("not PID 1: not deleting the running root")
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs("/", &sfs); err != nil {
		return fmt.Errorf("statfs /: %w", err)
	}
	if sfs.Type != ramfsMagic && sfs.Type != tmpfsMagic {
		return fmt.Errorf("/ is not a ramfs or tmpfs (magic %#x)", sfs.Type)
	}
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		return fmt.Errorf("stat /: %w", err)
	}
	if st.Dev == newRootDev {
		return errors.New("the new root is on the initramfs itself")
	}
	for _, k := range keep {
		if _, err := os.Lstat(k); err != nil {
			return fmt.Errorf("guard: %w", err)
		}
	}
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /: %w", err)
	}
	n, err := deleteContents(fd, st.Dev)
	log.Debug("freed initramfs", "entries", n)
	return err
}

func reopenConsole() error {
	fd, err := unix.Open("/dev/console", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(fd, i, 0); err != nil {
			return err
		}
	}
	return unix.Close(fd)
}
