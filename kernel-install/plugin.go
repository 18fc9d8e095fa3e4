// Package kernelinstall decides what pkginitrd does when it runs as the
// kernel-install(8) plugin or as a Debian /etc/kernel hook: build an image,
// copy a prebuilt one, remove one or step aside, and where. Plans are data;
// the caller runs the build. The scripts beside this file call pkginitrd.
package kernelinstall

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/atomicfile"
)

// Kind says what a plan does.
type Kind int

// Plan kinds.
const (
	Skip   Kind = iota // step aside, say why
	Copy               // copy a prebuilt initrd
	Build              // build an image
	Remove             // remove an image (Debian postrm)
	Extend             // a prebuilt initrd plus the configured per-host addition (pkginitrd extend)
)

// Plan is a decision of the plugin or a hook.
type Plan struct {
	Kind       Kind
	Reason     string // why (Skip) or what (others), one line
	Src        string // Copy, Extend: the prebuilt initrd
	Output     string // Copy, Extend, Build, Remove: the image path
	KVer       string // Copy, Extend, Build: the kernel version
	ModulesDir string // Copy, Extend, Build: its module tree
	Root       string // Copy, Extend, Build: system root ("" = /), for the configuration
	// UKI makes a Build plan write a unified kernel image of KernelImage
	// (kernel-install's layout=uki).
	UKI         bool
	KernelImage string
	ConfRoot    string // KERNEL_INSTALL_CONF_ROOT, where Cmdline looks first
}

// Extended turns a Copy plan into an Extend plan: the system configuration
// has an [extend] section, so the prebuilt initrd gets the host's addition.
func (p Plan) Extended() Plan {
	if p.Kind != Copy {
		return p
	}
	p.Kind = Extend
	p.Reason = fmt.Sprintf("using the prebuilt %s plus this host's [extend] addition", p.Src)
	return p
}

// ConfigDir is where a Build plan reads the system configuration: the
// root's /etc/pkginitrd.
func (p Plan) ConfigDir() string { return inRoot(p.Root, "/etc/pkginitrd") }

// Generic reports whether a Build plan must make a generic image: built
// for another root, the machine running the build is not the one booting it.
func (p Plan) Generic() bool { return p.Root != "" }

// CheckModules reports a Build plan whose module tree is missing.
func (p Plan) CheckModules() error {
	if !isDir(p.ModulesDir) {
		return fmt.Errorf("kernel %s: no modules at %s", p.KVer, p.ModulesDir)
	}
	return nil
}

// Apply carries out a Skip, Copy or Remove plan; a Build or Extend plan is
// the caller's to run.
func (p Plan) Apply() error {
	switch p.Kind {
	case Skip:
		return nil
	case Copy:
		return atomicfile.CopyFile(p.Src, p.Output, 0o600)
	case Remove:
		if err := os.Remove(p.Output); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", p.Output, err)
		}
		return nil
	}
	return fmt.Errorf("apply plan %q: builds and extensions are the caller's", p.Reason)
}

// PluginRequest is what kernel-install hands a plugin: its argv and the
// KERNEL_INSTALL_* environment.
type PluginRequest struct {
	Verb, KVer, EntryDir, KernelImage string
	Initrds                           []string
	Verbose                           bool   // KERNEL_INSTALL_VERBOSE=1
	ImageType                         string // KERNEL_INSTALL_IMAGE_TYPE
	Generator                         string // KERNEL_INSTALL_INITRD_GENERATOR
	Layout                            string // KERNEL_INSTALL_LAYOUT
	UKIGenerator                      string // KERNEL_INSTALL_UKI_GENERATOR
	ConfRoot                          string // KERNEL_INSTALL_CONF_ROOT
	Staging                           string // KERNEL_INSTALL_STAGING_AREA
	Root                              string // KERNEL_INSTALL_ROOT, "" for /
	Plugins                           string // KERNEL_INSTALL_PLUGINS when the caller set it
}

// ParsePluginRequest reads the plugin's positional arguments and
// environment; root, when set (--root), overrides KERNEL_INSTALL_ROOT.
func ParsePluginRequest(args []string, getenv func(string) string, root string) (PluginRequest, error) {
	if len(args) == 0 {
		return PluginRequest{}, errors.New("missing verb: want add KVER ENTRY_DIR KERNEL_IMAGE [INITRD...] or remove KVER ENTRY_DIR")
	}
	if root == "" {
		root = getenv("KERNEL_INSTALL_ROOT")
	}
	r := PluginRequest{
		Verb:         args[0],
		Verbose:      getenv("KERNEL_INSTALL_VERBOSE") == "1",
		ImageType:    getenv("KERNEL_INSTALL_IMAGE_TYPE"),
		Generator:    getenv("KERNEL_INSTALL_INITRD_GENERATOR"),
		Layout:       getenv("KERNEL_INSTALL_LAYOUT"),
		UKIGenerator: getenv("KERNEL_INSTALL_UKI_GENERATOR"),
		ConfRoot:     getenv("KERNEL_INSTALL_CONF_ROOT"),
		Staging:      getenv("KERNEL_INSTALL_STAGING_AREA"),
		Root:         normRoot(root),
		Plugins:      getenv("KERNEL_INSTALL_PLUGINS"),
	}
	if r.Verb != "add" {
		if len(args) > 1 {
			r.KVer = args[1]
		}
		return r, nil
	}
	if len(args) < 4 {
		return PluginRequest{}, fmt.Errorf("add: want KVER ENTRY_DIR KERNEL_IMAGE [INITRD...], got %d arguments", len(args)-1)
	}
	r.KVer, r.EntryDir, r.KernelImage, r.Initrds = args[1], args[2], args[3], args[4:]
	if r.KVer == "" || strings.Contains(r.KVer, "/") {
		return PluginRequest{}, fmt.Errorf("add: bad kernel version %q", r.KVer)
	}
	return r, nil
}

func normRoot(r string) string {
	if r == "" || filepath.Clean(r) == "/" {
		return ""
	}
	return filepath.Clean(r)
}

// PlanPlugin decides what `kernel-install add|remove` asks of pkginitrd.
// It reads the filesystem only to find a prebuilt initrd, the entry
// directory, Debian's initrd and its staging plugin and the module tree.
func PlanPlugin(r PluginRequest) Plan {
	switch {
	case r.Verb == "remove":
		return Plan{Kind: Skip, Reason: "remove: nothing to do, kernel-install removes the entry directory"}
	case r.Verb != "add":
		return Plan{Kind: Skip, Reason: fmt.Sprintf("%s: nothing to do", r.Verb)}
	case len(r.Initrds) > 0:
		return Plan{Kind: Skip, Reason: fmt.Sprintf("initrds were given (%s): not generating one", strings.Join(r.Initrds, " "))}
	case r.ImageType == "uki":
		return Plan{Kind: Skip, Reason: "the kernel image is a UKI and carries its own initrd"}
	case r.Generator != "" && r.Generator != "pkginitrd":
		return Plan{Kind: Skip, Reason: fmt.Sprintf("KERNEL_INSTALL_INITRD_GENERATOR=%s: another initrd generator is selected", r.Generator)}
	}
	if r.Layout == "uki" && (r.UKIGenerator == "" || r.UKIGenerator == "pkginitrd") && r.Staging != "" {
		// Like dracut, an empty uki_generator counts as us; 60-ukify
		// leaves a uki.efi already in the staging area alone.
		return Plan{Kind: Build, Reason: fmt.Sprintf("layout=uki: building the unified kernel image for %s", r.KVer),
			Output: filepath.Join(r.Staging, "uki.efi"), KVer: r.KVer, ModulesDir: modulesDir(r.Root, r.KVer), Root: r.Root,
			UKI: true, KernelImage: r.KernelImage, ConfRoot: r.ConfRoot}
	}
	var output string
	switch {
	case r.Staging != "":
		output = filepath.Join(r.Staging, "initrd")
	case isDir(r.EntryDir):
		output = filepath.Join(r.EntryDir, "initrd")
	default:
		return Plan{Kind: Skip, Reason: fmt.Sprintf("no staging area and no entry directory %s: kernel-install does not use a BLS layout here", r.EntryDir)}
	}
	debInitrd := filepath.Join(inRoot(r.Root, "/boot"), "initrd.img-"+r.KVer)
	if isFile(debInitrd) {
		if stager := debianStager(r.Root, r.Plugins); stager != "" {
			return Plan{Kind: Skip, Reason: fmt.Sprintf("%s exists (made by a Debian kernel hook, such as pkginitrd's postinst.d one) and %s stages it", debInitrd, stager)}
		}
	}
	if pre := filepath.Join(filepath.Dir(r.KernelImage), "initrd"); r.KernelImage != "" && isFile(pre) {
		return Plan{Kind: Copy, Reason: fmt.Sprintf("using the prebuilt %s", pre), Src: pre, Output: output,
			KVer: r.KVer, ModulesDir: modulesDir(r.Root, r.KVer), Root: r.Root}
	}
	return Plan{Kind: Build, Reason: fmt.Sprintf("building the initrd for %s", r.KVer), Output: output,
		KVer: r.KVer, ModulesDir: modulesDir(r.Root, r.KVer), Root: r.Root}
}

// debianStager returns the name of the Debian kernel-install plugin that
// stages /boot/initrd.img-KVER (55-initrd.install, 85-initrd.install in
// bookworm) if one will run, else "". plugins is KERNEL_INSTALL_PLUGINS,
// which replaces the plugin directories when set.
func debianStager(root, plugins string) string {
	names := []string{"55-initrd.install", "85-initrd.install"}
	if strings.TrimSpace(plugins) != "" {
		for _, p := range strings.Fields(plugins) {
			for _, n := range names {
				if filepath.Base(p) == n {
					return n
				}
			}
		}
		return ""
	}
	for _, n := range names {
		etc := filepath.Join(inRoot(root, "/etc/kernel/install.d"), n)
		if fi, err := os.Lstat(etc); err == nil {
			if fi.Mode()&fs.ModeSymlink != 0 {
				if t, _ := os.Readlink(etc); t == "/dev/null" {
					continue // masked
				}
			}
			return n
		}
		if isFile(filepath.Join(inRoot(root, "/usr/lib/kernel/install.d"), n)) {
			return n
		}
	}
	return ""
}

// modulesDir is the module tree of kver below root: /usr/lib/modules, or
// /lib/modules on systems without merged /usr.
func modulesDir(root, kver string) string {
	usr := filepath.Join(inRoot(root, "/usr/lib/modules"), kver)
	if lib := filepath.Join(inRoot(root, "/lib/modules"), kver); !isDir(usr) && isDir(lib) {
		return lib
	}
	return usr
}

func inRoot(root, p string) string {
	if root == "" {
		return p
	}
	return filepath.Join(root, p)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
