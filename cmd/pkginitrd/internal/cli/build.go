package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/pkginitrd/pkginitrd/image/sbom"
	kernelinstall "github.com/pkginitrd/pkginitrd/kernel-install"
	"github.com/pkginitrd/pkginitrd/pipeline"
)

const buildHelp = `
Build an initramfs image from the distribution's packages, the kernel's
modules and pkginitrd's own /init (stage0).

Configuration is read from the built-in defaults, /etc/pkginitrd/pkginitrd.toml
and /etc/pkginitrd/conf.d/*.toml, then ./pkginitrd.toml and
./pkginitrd.conf.d/*.toml, then --config files; flags override all of them.

By default the image is host-only: it carries the modules loaded on this
machine (/proc/modules) and those its root device chain needs (filesystem,
dm/md layers, the drivers of the disk and its parent devices, from
/proc/self/mountinfo and /sys); --sysroot reads a recorded /proc and /sys
instead. --generic builds the image a distribution ships:
the documented generic module set, no host detection.

The kernel is, in order: --kernel-package (the distribution's kernel package,
fetched and cached; its vmlinuz is placed beside the image), --modules-dir,
--kernel-version under /usr/lib/modules, or the newest kernel there.

The image, the kernel beside it, the manifest and the SBOM are written to
temporary files and renamed over the old ones together at the end, so a
failed or interrupted build leaves the previous outputs as they were. The image is
mode 0600 unless --mode or image_mode says otherwise; a rebuild keeps the
replaced image's mode. SOURCE_DATE_EPOCH sets every file's mtime (default
0): the same inputs give a byte-identical image (and SBOM, whose creation
time is SOURCE_DATE_EPOCH). The image also carries a small manifest of
itself (packages, modules, build options) that 'pkginitrd inspect' shows.

--uki writes a unified kernel image instead: the distribution's
systemd-stub (its stub_package, fetched and cached like any package, or
--uki-stub) with the kernel (--kernel-package's, --kernel-image, or the
module tree's vmlinuz), the image, the command line (--cmdline; else
[uki] cmdline; else, for host-only builds, /etc/kernel/cmdline or
/usr/lib/kernel/cmdline) and os-release (the image's, else the host's).
--secureboot-key and --secureboot-cert sign it with sbsign (sbsigntool).

Examples:
  pkginitrd build --generic --kernel-package linux-image-amd64 -o initrd.img
  pkginitrd build --kernel-version 6.1.0-26-amd64 --compression xz
  pkginitrd build --generic --release trixie --kernel-package linux-image-amd64
  pkginitrd build --generic --distribution fedora --release 41 -o initrd.img
  pkginitrd build --generic --kernel-package linux-image-amd64 --sbom initrd.spdx.json
  pkginitrd build --uki --kernel-package linux-image-amd64 --cmdline "root=LABEL=root ro" -o linux.efi
`

func runBuild(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "build", "[flags]", buildHelp)
	var sel selection
	sel.register(fs)
	var (
		output   = fs.String("output", "initrd.img", "path of the image to write")
		comp     = fs.String("compression", "", "zstd, gzip, lz4, xz or none (default from config: zstd)")
		distro   = fs.String("distribution", "", "distribution to take packages from, e.g. debian or fedora (default from config, else detected from /etc/os-release)")
		release  = fs.String("release", "", "distribution release, e.g. bookworm or 41 (default from config, else the host's when its distribution was detected)")
		mirror   = fs.String("mirror", "", "package mirror URL (default from config)")
		offline  = fs.Bool("offline", false, "never use the network: build from the cache only")
		manifest = fs.String("manifest", "", "also write a JSON manifest (packages, modules, sizes) to this path")
		sbomPath = fs.String("sbom", "", "also write a software bill of materials (packages, files with SHA-256) to this path")
		sbomFmt  = fs.String("sbom-format", sbom.SPDX, "format of --sbom: spdx (SPDX 2.3 JSON) or cyclonedx (CycloneDX 1.5 JSON)")
		mode     = fs.String("mode", "", "file mode of the image, octal, e.g. 0644 (default from config image_mode; else the replaced image's mode; else 0600)")
		fwDir    = fs.String("firmware-dir", "/usr/lib/firmware", "where the firmware files the image's modules name are taken from (missing files are warnings)")
		ukiOut   = fs.Bool("uki", false, "write a unified kernel image (systemd-stub + kernel + image) instead of an initrd")
		kimage   = fs.String("kernel-image", "", "--uki: the kernel image (default: --kernel-package's, else vmlinuz beside the module tree or /boot/vmlinuz-KVER)")
		cmdline  = fs.String("cmdline", "", "--uki: the kernel command line (default from config [uki] cmdline, else /etc/kernel/cmdline for host-only builds)")
		stub     = fs.String("uki-stub", "", "--uki: this systemd-stub file instead of the distribution's stub package")
		sbKey    = fs.String("secureboot-key", "", "--uki: sign with this private key (PEM), with sbsign")
		sbCert   = fs.String("secureboot-cert", "", "--uki: sign with this certificate (PEM)")
		verbose  = fs.Bool("verbose", false, "log every step")
		quiet    = fs.Bool("quiet", false, "log errors only")
		keymap   = fs.String("keymap", "", "console keymap loaded before passphrase prompts: a name or file for the host's loadkeys (default: the host's, in host-only images; none to leave it out)")
		conFont  = fs.String("console-font", "", "console font (PSF) loaded with the keymap: a name in the host's console font directories or a file (default: the host's, in host-only images; none to leave it out)")
		includes stringList
		packages stringList
		features stringList
	)
	fs.StringVar(output, "o", "initrd.img", "shorthand for --output")
	fs.BoolVar(verbose, "v", false, "shorthand for --verbose")
	fs.Var(&includes, "include", "SRC:DEST: copy a host file or directory into the image (repeatable)")
	fs.Var(&packages, "package", "extra distribution package to install into the image (repeatable)")
	fs.Var(&features, "feature", "enable an optional stage0 feature defined by the configuration (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "pkginitrd build: unexpected argument %q (see --help)\n", fs.Arg(0))
		return errUsage
	}
	opts, err := sel.options(env, fs)
	if err != nil {
		return err
	}
	cfg := opts.Config
	if *comp != "" {
		cfg.Compression = *comp
	}
	if *distro != "" {
		cfg.Distribution = *distro
	}
	if *release != "" {
		cfg.Release = *release
	}
	if *mirror != "" {
		cfg.Mirror = *mirror
	}
	if *mode != "" {
		cfg.ImageMode = *mode
	}
	cfg.Features = append(cfg.Features, features...)
	opts.Output = *output
	opts.Manifest = *manifest
	opts.SBOM, opts.SBOMFormat = *sbomPath, *sbomFmt
	opts.Packages = packages
	opts.Offline = *offline
	opts.Stage0 = env.Executable
	opts.FirmwareDir = *fwDir
	opts.Keymap = *keymap
	opts.Font = *conFont
	opts.Logger = newLogger(env.Stderr, *verbose, *quiet)
	if opts.Mtime, err = sourceDateEpoch(env.Getenv); err != nil {
		return err
	}
	if opts.UKI, err = ukiOptions(*ukiOut, ukiFlags{*kimage, *cmdline, *stub, *sbKey, *sbCert}, opts); err != nil {
		return err
	}
	for _, s := range includes {
		inc, err := pipeline.ParseInclude(s)
		if err != nil {
			return err
		}
		opts.Includes = append(opts.Includes, inc)
	}
	res, err := pipeline.Run(ctx, opts)
	if err != nil {
		return err
	}
	m := res.Manifest
	what := opts.Output
	if res.UKI {
		what += ": unified kernel image; its initrd"
	}
	fmt.Fprintf(env.Stdout, "%s: %d bytes, kernel %s, %d packages, %d modules, %d files\n",
		what, m.Size, m.KernelVersion, len(m.Packages), len(m.Modules), m.Files)
	if res.Vmlinuz != "" {
		fmt.Fprintf(env.Stdout, "%s: kernel image\n", res.Vmlinuz)
	}
	return nil
}

// ukiFlags are the build flags that only --uki uses.
type ukiFlags struct{ kernelImage, cmdline, stub, key, cert string }

// ukiOptions turns --uki and its flags into the pipeline's UKI, with the
// command line's defaults; without --uki its flags are an error.
func ukiOptions(on bool, f ukiFlags, opts pipeline.Options) (*pipeline.UKI, error) {
	if !on {
		if f != (ukiFlags{}) {
			return nil, errors.New("--kernel-image, --cmdline, --uki-stub and --secureboot-key/--secureboot-cert need --uki")
		}
		return nil, nil
	}
	u := &pipeline.UKI{KernelImage: f.kernelImage, Cmdline: f.cmdline, Stub: f.stub, Key: f.key, Cert: f.cert}
	if u.Cmdline == "" {
		u.Cmdline = opts.Config.UKI.Cmdline
	}
	if u.Cmdline == "" && !opts.Generic {
		c, err := kernelinstall.Cmdline("", "")
		if err != nil {
			return nil, err
		}
		u.Cmdline = c
	}
	return u, nil
}
