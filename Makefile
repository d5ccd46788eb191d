# cloudxr-wss-proxy — common tasks. Go 1.26 is expected at /usr/local/go.
export PATH := /usr/local/go/bin:$(PATH)

BINARY  := cloudxr-wss-proxy
# The version of the commit checked out (internal/version: ordered as the
# commits are, by dpkg, rpm and Helm); VERSION=1.2.3 names it instead.
ifeq ($(origin VERSION),undefined)
VERSION := $(shell go run ./internal/version/describe 2>/dev/null || echo 0.0.0~dev)
endif
LDFLAGS := -s -w -X main.version=$(VERSION)

PREFIX     ?= /usr/local
DESTDIR    ?=
PROXY_PORT ?= 48322
UNITDIR    := $(PREFIX)/lib/systemd/system

.PHONY: build run test test-fast test-e2e test-deps lint fuzz bench soak install uninstall dist clean version

# The end-to-end suite (e2e/) is kept out of a plain `go test ./...` by the
# e2e build tag; its one-minute soak and handshake flood by soak too.
E2E_TAGS := e2e,soak

build: ## a static binary in ./cloudxr-wss-proxy
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BINARY) .

version: ## print the version build stamps and dist names packages with (podman build --build-arg VERSION="$$(make -s version)" .)
	@echo '$(VERSION)'

run: build ## run with defaults; the certificate is generated in ./certs-local
	CERT_DIR=$(CURDIR)/certs-local ./$(BINARY)

test: test-deps ## vet, then every test, end-to-end included, with the race detector (what CI runs; as root)
	go vet -tags $(E2E_TAGS) ./...
	./scripts/test.sh -tags $(E2E_TAGS)

test-fast: ## the unit tests only: no root, no tools beyond Go; minutes warm, longer on the first run (every dependency built with -race)
	go test -race ./...
	go test -count=1 -run '^TestSessionAllocations$$' ./proxy # the allocation budget, without the race detector

test-e2e: test-deps ## the end-to-end suite without the soak and the flood (as root)
	go vet -tags e2e ./...
	./scripts/test.sh -tags e2e
test-deps: ## install chromium and certutil from Debian's packages if missing
	@./scripts/test-deps.sh

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint: ## formatting, vet, staticcheck (configured in staticcheck.conf) and the documents against the code
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: the files above need formatting"; exit 1; }
	go vet -tags $(E2E_TAGS) ./...
	go run $(STATICCHECK) -tags $(E2E_TAGS) ./...
	go test -count=1 ./internal/doccheck # every setting, metric, file, test and link the Markdown files name exists

bench: ## ours against HAProxy, side by side; writes bench/results/ (installs haproxy if missing)
	@./scripts/bench-deps.sh
	go run ./bench -out bench/results

soak: ## thousands of sessions for DURATION (default 10m) while the backend restarts; prints outcomes and the proxy's footprint
	go run ./bench/soak -duration $(or $(DURATION),10m) $(SOAKFLAGS)

fuzz: ## run each fuzzer for FUZZTIME (default 1m)
	go test -run XXX -fuzz FuzzParseRequestHead -fuzztime $(or $(FUZZTIME),1m) ./proxy
	go test -run XXX -fuzz FuzzInjectResponse -fuzztime $(or $(FUZZTIME),1m) ./proxy
	go test -run XXX -fuzz 'FuzzRefusal$$' -fuzztime $(or $(FUZZTIME),1m) ./proxy
	go test -run XXX -fuzz 'FuzzChunkedEnd$$' -fuzztime $(or $(FUZZTIME),1m) ./tunnel
	go test -run XXX -fuzz FuzzChunkedEndAnyBytes -fuzztime $(or $(FUZZTIME),1m) ./tunnel

install: build ## the binary and a systemd unit under DESTDIR/PREFIX; PROXY_PORT<1024 adds CAP_NET_BIND_SERVICE
	install -D -m 0755 $(BINARY) $(DESTDIR)$(PREFIX)/bin/$(BINARY)
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/lib/sysusers.d $(DESTDIR)/etc/cloudxr-wss-proxy
	sed 's|@PREFIX@|$(PREFIX)|g' deploy/systemd/cloudxr-wss-proxy.service.in > $(DESTDIR)$(UNITDIR)/cloudxr-wss-proxy.service
	install -m 0644 deploy/systemd/cloudxr-wss-proxy.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/cloudxr-wss-proxy.conf
# The settings file holds secrets (DNS API tokens, TSIG and EAB keys): root's, readable by the service's group
# (the program reads it on each reload), by nobody else. An existing one is the administrator's and is left as it is.
	test -e $(DESTDIR)/etc/cloudxr-wss-proxy/env || { install -m 0640 deploy/systemd/env.example $(DESTDIR)/etc/cloudxr-wss-proxy/env; \
		if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null; then systemd-sysusers $(PREFIX)/lib/sysusers.d/cloudxr-wss-proxy.conf; fi; \
		getent group cloudxr-wss-proxy >/dev/null && chgrp cloudxr-wss-proxy $(DESTDIR)/etc/cloudxr-wss-proxy/env || chmod 0600 $(DESTDIR)/etc/cloudxr-wss-proxy/env; }
	if [ $(PROXY_PORT) -lt 1024 ]; then \
		install -D -m 0644 deploy/systemd/low-port.conf $(DESTDIR)$(UNITDIR)/cloudxr-wss-proxy.service.d/low-port.conf; \
		grep -q '^PROXY_PORT=' $(DESTDIR)/etc/cloudxr-wss-proxy/env || echo 'PROXY_PORT=$(PROXY_PORT)' >> $(DESTDIR)/etc/cloudxr-wss-proxy/env; \
	fi

# The reverse of install. Into a DESTDIR it touches no running system; on the
# machine itself it stops and disables the service first when systemd runs.
# The settings file (it may hold secrets the administrator wrote) and the
# certificates (a CA headsets trust) stay unless PURGE=1; the system user
# stays, as packages leave theirs: files elsewhere may still be its.
uninstall: ## remove what install put in place; PURGE=1 also the settings and certificates (the system user stays)
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		systemctl disable --now cloudxr-wss-proxy.service 2>/dev/null || true; fi
	rm -f $(DESTDIR)$(PREFIX)/bin/$(BINARY) $(DESTDIR)$(UNITDIR)/cloudxr-wss-proxy.service \
		$(DESTDIR)$(UNITDIR)/cloudxr-wss-proxy.service.d/low-port.conf $(DESTDIR)$(PREFIX)/lib/sysusers.d/cloudxr-wss-proxy.conf
	rmdir $(DESTDIR)$(UNITDIR)/cloudxr-wss-proxy.service.d 2>/dev/null || true
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@if [ "$(PURGE)" = 1 ]; then \
		echo rm -rf $(DESTDIR)/etc/cloudxr-wss-proxy $(DESTDIR)/var/lib/cloudxr-wss-proxy; \
		rm -rf $(DESTDIR)/etc/cloudxr-wss-proxy $(DESTDIR)/var/lib/cloudxr-wss-proxy; \
	else \
		echo "kept: $(DESTDIR)/etc/cloudxr-wss-proxy (settings) and $(DESTDIR)/var/lib/cloudxr-wss-proxy (certificates); make uninstall PURGE=1 removes them"; \
	fi
	@echo "kept: the system user cloudxr-wss-proxy; userdel cloudxr-wss-proxy removes it"

dist: ## the release in ./dist: archives for every platform, .deb and .rpm for Linux amd64/arm64, SHA256SUMS (VERSION=1.2.3 to name it)
	go run ./release -out dist $(if $(filter command line environment,$(origin VERSION)),-version $(VERSION))

clean:
	rm -rf $(BINARY) certs-local dist
