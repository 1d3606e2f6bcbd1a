# Build, test and code generation for otelcol-execsnoop.
# Generating the BPF objects needs Debian's clang-16, llvm-16 and libbpf-dev;
# tests that load BPF programs need root. .ci/run installs all of it.

SHELL     := bash
.SHELLFLAGS := -eu -o pipefail -c

OCB_VERSION := v0.165.0
OCB         := bin/builder
DIST_DIR    := cmd/otelcol-execsnoop
OTELCOL     := bin/otelcol-execsnoop
# Directories holding committed generated code (see check-generated).
GENERATED   := bpf receiver $(DIST_DIR)

.PHONY: all deps print-deps tools generate distribution build run test vet validate check-generated bench jaeger
all: build

# Debian packages for generating BPF objects (clang, libbpf headers), the
# reference tool of the benchmark and the tests' helpers (bpftool, setpriv,
# unshare). `deps` installs the missing ones (as root, from Debian).
DEBIAN_PACKAGES := clang-16 llvm-16 libbpf-dev bpftool libbpf-tools util-linux
deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f '$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing" $$missing; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing </dev/null; \
	fi
print-deps:
	@echo $(DEBIAN_PACKAGES)

# ocb goes into bin/ rather than being a `tool` of the root module, which
# would pull its whole dependency tree into the root go.mod.
tools:
	GOBIN=$(CURDIR)/bin go install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)
$(OCB):
	$(MAKE) tools

# bpf2go (clang-16) for the eBPF objects, mdatagen for the receiver metadata,
# then the collector distribution.
generate:
	go generate ./bpf/...
	go generate ./receiver/...
	$(MAKE) distribution

# Regenerate the committed distribution sources in $(DIST_DIR).
# -e lets ocb's internal `go mod tidy` pass over two test-only dependencies that
# the module proxy refuses; they are never built.
distribution: $(OCB)
	mkdir -p cmd
	GOFLAGS="$(strip $(GOFLAGS) -e)" $(OCB) --config builder-config.yaml --skip-compilation
	# ocb's output is not gofmt-clean; committed Go code is.
	gofmt -w $(DIST_DIR)

# The distribution is regenerated first (about a second when warm) so that its
# go.mod/go.sum follow the root module's. bin/execsnoop is built once
# cmd/execsnoop exists.
build: distribution
	cd $(DIST_DIR) && CGO_ENABLED=0 go build -trimpath -o $(CURDIR)/$(OTELCOL) .
	$(if $(wildcard cmd/execsnoop),go build -o bin/execsnoop ./cmd/execsnoop)

run: build
	$(OTELCOL) --config config/otelcol.yaml

# Jaeger v2, from the Go module proxy (tools/jaeger pins it): the real trace
# backend of the end-to-end span test. About 3.5 minutes to build cold.
JAEGER := bin/jaeger
jaeger: $(JAEGER)
$(JAEGER): tools/jaeger/go.mod
	cd tools/jaeger && CGO_ENABLED=0 go build -trimpath -o $(CURDIR)/$(JAEGER) github.com/jaegertracing/jaeger/cmd/jaeger

# Everything CI checks. The end-to-end tests run the built collector (and
# Jaeger), found through OTELCOL_EXECSNOOP_BIN and JAEGER_BIN.
test: deps build vet $(JAEGER)
	OTELCOL_EXECSNOOP_BIN=$(CURDIR)/$(OTELCOL) JAEGER_BIN=$(CURDIR)/$(JAEGER) go test -count=1 ./...
	$(MAKE) validate
	$(MAKE) check-generated
	$(MAKE) test-packages

vet:
	go vet ./...

# config/kubernetes.yaml filters pods by $K8S_NODE_NAME, which must be set.
validate: $(OTELCOL)
	for f in config/*.yaml; do \
		echo "validate $$f"; \
		K8S_NODE_NAME=$${K8S_NODE_NAME:-validate} $(OTELCOL) validate --config $$f; \
	done

$(OTELCOL):
	$(MAKE) build

# Fails when committed generated code is stale: regenerate everything and
# compare with the index. (clang's output is deterministic, so the .o is
# compared byte for byte.)
check-generated: generate
	@changes=$$(git status --porcelain -- $(GENERATED)); \
	if [ -n "$$changes" ]; then \
		echo "generated code is out of date; run 'make generate' and commit:"; \
		echo "$$changes"; git --no-pager diff --stat -- $(GENERATED); \
		exit 1; \
	fi; \
	echo "generated code is up to date"

# Go benchmarks (decoding, conversion, the receiver's per-event path), then
# exec storms under each tracer next to libbpf-tools execsnoop; the table
# goes to bench/results.md. BENCH_EXECS sets the storm size.
BENCH_EXECS ?= 20000
bench: build
	go test -run '^$$' -bench . -benchmem ./bpf/ ./internal/... ./receiver/...
	go build -o bin/execstorm ./cmd/execstorm
	go run ./test/bench -n $(BENCH_EXECS) -workers 1,2 -bin bin -out bench/results.md

# Host packages (.deb and .rpm) with a hardened systemd unit: deploy/packages.
# nfpm v2.45.2 is the newest nfpm that `go install` builds from the module
# proxy (v2.46+ need go.digitalxero.dev modules the proxy refuses).
NFPM_VERSION   := v2.45.2
NFPM           := bin/nfpm
PKG_VERSION    ?= $(shell sed -n 's/^  version: *//p' builder-config.yaml)
PKG_RELEASE    ?= 1
PKG_MAINTAINER ?= otelcol-execsnoop maintainers <maintainers@otelexecsnoop.invalid>
PKG_DIR        := bin/packages
# Tools of the package test (lintian, rpmlint, the guest's debootstrap and
# QEMU, debugfs to read results back without mounting).
PACKAGES_TEST_DEBIAN_PACKAGES := lintian rpmlint debootstrap qemu-system-x86 e2fsprogs

.PHONY: packages packages-deps test-packages
$(NFPM):
	GOBIN=$(CURDIR)/bin go install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

# bin/packages/otelcol-execsnoop_<version>-<release>_amd64.deb and
# otelcol-execsnoop-<version>-<release>.x86_64.rpm, static binaries inside.
packages: $(NFPM)
	mkdir -p bin/pkg $(PKG_DIR)
	cd $(DIST_DIR) && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o $(CURDIR)/bin/pkg/otelcol-execsnoop .
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o bin/pkg/execsnoop ./cmd/execsnoop
	sed 's|/etc/default/|/etc/sysconfig/|' deploy/packages/otelcol-execsnoop.service >bin/pkg/otelcol-execsnoop.rpm.service
	printf '%s\n' "- semver: \"$(PKG_VERSION)-$(PKG_RELEASE)\"" \
		"  date: \"$$(git log -1 --format=%cI 2>/dev/null || date -Is)\"" \
		"  packager: \"$(PKG_MAINTAINER)\"" "  changes:" \
		"    - note: \"Built from commit $$(git rev-parse --short HEAD 2>/dev/null || echo unknown).\"" >bin/pkg/changelog.yaml
	for p in deb rpm; do \
		PKG_VERSION='$(PKG_VERSION)' PKG_RELEASE='$(PKG_RELEASE)' PKG_MAINTAINER='$(PKG_MAINTAINER)' \
			$(NFPM) package --config deploy/packages/nfpm.yaml --packager $$p --target $(PKG_DIR)/; \
	done

packages-deps:
	@missing=$$(for p in $(PACKAGES_TEST_DEBIAN_PACKAGES); do \
		dpkg-query -W -f '$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing" $$missing; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing </dev/null; \
	fi

# lintian and rpmlint, then a Debian 12 VM under QEMU (TCG) where the .deb is
# installed, run, restarted, upgraded from release 0, removed and purged.
# Cold: debootstrap of the guest (cached in bin/packages-vm); see
# test/packages/README.md for the timings.
test-packages: packages-deps
	$(MAKE) packages PKG_RELEASE=0
	$(MAKE) packages PKG_RELEASE=1
	PACKAGES_DIR=$(CURDIR)/$(PKG_DIR) PACKAGES_VERSION=$(PKG_VERSION) \
		go test -count=1 -v -timeout 45m ./test/packages/
