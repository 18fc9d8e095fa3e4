# pkginitrd must be static: the same binary is the image's /init.
GOFLAGS_BUILD = -trimpath -ldflags='-s -w'
PREFIX ?= /usr/local

pkginitrd:
	CGO_ENABLED=0 go build $(GOFLAGS_BUILD) -o $@ ./cmd/pkginitrd

# pkginitrd_VERSION_ARCH.deb in out/ (see tools/mkdeb).
deb:
	./tools/mkdeb out

test:
	./tests/run-all.sh

bench:
	go test -run '^$$' -bench . -benchtime 3x ./image/... ./modules/... ./backends/... ./internal/kmod ./pipeline
	./bench/compare-dracut.sh

# kernel-install and Debian look for their hooks at fixed paths, not under PREFIX.
KERNEL_INSTALL_DIR ?= /usr/lib/kernel/install.d
KERNEL_HOOK_DIR ?= /etc/kernel
# The hook scripts call pkginitrd by its installed path (dpkg and
# kernel-install may run them with a PATH that lacks PREFIX/bin).
HOOK_SED = sed 's|^bin=pkginitrd$$|bin=$(PREFIX)/bin/pkginitrd|'

install: pkginitrd
	install -D -m 0755 pkginitrd $(DESTDIR)$(PREFIX)/bin/pkginitrd
	install -d $(DESTDIR)$(KERNEL_INSTALL_DIR) $(DESTDIR)$(KERNEL_HOOK_DIR)/postinst.d $(DESTDIR)$(KERNEL_HOOK_DIR)/postrm.d
	$(HOOK_SED) kernel-install/50-pkginitrd.install >$(DESTDIR)$(KERNEL_INSTALL_DIR)/50-pkginitrd.install
	$(HOOK_SED) kernel-install/postinst.d/pkginitrd >$(DESTDIR)$(KERNEL_HOOK_DIR)/postinst.d/pkginitrd
	$(HOOK_SED) kernel-install/postrm.d/pkginitrd >$(DESTDIR)$(KERNEL_HOOK_DIR)/postrm.d/pkginitrd
	chmod 0755 $(DESTDIR)$(KERNEL_INSTALL_DIR)/50-pkginitrd.install \
		$(DESTDIR)$(KERNEL_HOOK_DIR)/postinst.d/pkginitrd $(DESTDIR)$(KERNEL_HOOK_DIR)/postrm.d/pkginitrd

.PHONY: pkginitrd deb test bench install
