# pkginitrd must be static: the same binary is the image's /init.
GOFLAGS_BUILD = -trimpath -ldflags='-s -w'
PREFIX ?= /usr/local

pkginitrd:
	CGO_ENABLED=0 go build $(GOFLAGS_BUILD) -o $@ ./cmd/pkginitrd

test:
	./tests/run-all.sh

bench:
	go test -run '^$$' -bench . -benchtime 3x ./image ./modules ./backends/... ./kmod
	./bench/compare-dracut.sh

install: pkginitrd
	install -D -m 0755 pkginitrd $(DESTDIR)$(PREFIX)/bin/pkginitrd

.PHONY: pkginitrd test bench install
