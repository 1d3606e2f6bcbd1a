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

.PHONY: image all deps print-deps tools generate distribution build run test vet validate check-generated bench jaeger victorialogs test-kernels
all: build

# Debian packages for generating BPF objects (clang, libbpf headers), the
# reference tool of the benchmark and its syscall counter (linux-perf's perf
# stat), and the tests' helpers (bpftool, setpriv, unshare, setcap, script).
# `deps` installs the missing ones (as root, from Debian).
DEBIAN_PACKAGES := clang-16 llvm-16 libbpf-dev bpftool libbpf-tools linux-perf util-linux libcap2-bin bsdutils
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

# bpf2go (clang-16, which `deps` installs) for the eBPF objects, mdatagen for
# the receiver metadata, then the collector distribution.
generate: deps
	go generate ./bpf/...
	go generate ./receiver/...
	$(MAKE) distribution

# bpf/headers/<arch>/vmlinux.h from the BTF of Debian's cloud kernels
# (downloaded, never booted; bpf/headers/vmlinux.sh). Not part of generate:
# it needs the network and changes only when the kernel is meant to change.
VMLINUX_RELEASE ?= trixie
.PHONY: vmlinux-headers build-arm64
vmlinux-headers:
	bpf/headers/vmlinux.sh x86 $(VMLINUX_RELEASE)
	bpf/headers/vmlinux.sh arm64 $(VMLINUX_RELEASE)

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

# The collector and the CLI for linux/arm64 (static, CGO off) in
# bin/linux-arm64/.
build-arm64: distribution
	mkdir -p bin/linux-arm64
	cd $(DIST_DIR) && CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -o $(CURDIR)/bin/linux-arm64/otelcol-execsnoop .
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -o bin/linux-arm64/execsnoop ./cmd/execsnoop

run: build
	$(OTELCOL) --config config/otelcol.yaml

# Jaeger v2, from the Go module proxy (tools/jaeger pins it): the real trace
# backend of the end-to-end span test. About 3.5 minutes to build cold.
JAEGER := bin/jaeger
jaeger: $(JAEGER)
$(JAEGER): tools/jaeger/go.mod
	cd tools/jaeger && CGO_ENABLED=0 go build -trimpath -o $(CURDIR)/$(JAEGER) github.com/jaegertracing/jaeger/cmd/jaeger

# VictoriaLogs, from the Go module proxy (tools/victorialogs pins it): the
# real log store of the end-to-end detection test, which ingests the
# collector's OTLP/HTTP logs and answers the receiver README's LogsQL queries.
# About 1.5 minutes of CPU to build cold (5 minutes wall at load ~20 on 2 cores).
VICTORIALOGS := bin/victoria-logs
victorialogs: $(VICTORIALOGS)
$(VICTORIALOGS): tools/victorialogs/go.mod
	cd tools/victorialogs && CGO_ENABLED=0 go build -trimpath -o $(CURDIR)/$(VICTORIALOGS) github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs

# The node agent's container image, FROM scratch, built by buildah (Debian's,
# daemonless: vfs storage, chroot isolation) into an OCI archive that
# `ctr -n k8s.io images import` or `skopeo copy` loads; no registry needed.
# The archive holds an OCI image index with one image per IMAGE_PLATFORMS
# entry, each with that platform's static collector (cross-compiled; the
# Containerfile has no RUN step, so nothing is emulated). Measured on 2
# cores beside a CI run (load ~8): 91 s wall (21 s user) with both
# architectures' collector in the Go build cache (after make packages,
# same flags); cold, the arm64 cross-compile costs what make packages'
# does (below).
IMAGE_VERSION   := $(shell sed -n 's/^  version: *//p' builder-config.yaml)
IMAGE_NAME      := localhost/otelcol-execsnoop:$(IMAGE_VERSION)
IMAGE_TAR       := bin/image/otelcol-execsnoop.tar
IMAGE_PLATFORMS := linux/amd64 linux/arm64
IMAGE_LICENSES ?= NOASSERTION
image: distribution
	@command -v buildah >/dev/null || { echo "make image needs buildah: apt-get install buildah (or make k8s-deps)"; exit 1; }
	rm -rf bin/image/ctx && mkdir -p bin/image/ctx
	for p in $(IMAGE_PLATFORMS); do \
		(cd $(DIST_DIR) && CGO_ENABLED=0 GOOS=$${p%%/*} GOARCH=$${p#*/} go build -trimpath -ldflags '-s -w' -o $(CURDIR)/bin/image/ctx/$${p#*/}/otelcol-execsnoop .); \
	done
	cp config/otlp.yaml bin/image/ctx/config.yaml
	cp /etc/ssl/certs/ca-certificates.crt bin/image/ctx/
	deploy/image/build.sh $(IMAGE_NAME) deploy/image/Containerfile bin/image/ctx $(IMAGE_TAR) \
		--platforms '$(IMAGE_PLATFORMS)' \
		--build-arg VERSION=$(IMAGE_VERSION) --build-arg REVISION=$$(git rev-parse HEAD) \
		--build-arg LICENSES="$(IMAGE_LICENSES)"
	@for p in $(IMAGE_PLATFORMS); do echo "$$p binary $$(du -k bin/image/ctx/$${p#*/}/otelcol-execsnoop | cut -f1) KiB"; done
	@echo "image index $$(du -k $(IMAGE_TAR) | cut -f1) KiB"

# A one-node Kubernetes cluster for test/k8s, from parts this machine can
# get: Kubernetes v1.37.2 (tools/kubernetes pins it and its staging modules),
# etcd v3.7.3 and Helm v3 from the Go module proxy, built once into bin/k8s
# (cold: 22 min user + 7.5 min system CPU for all eight binaries, 70 min wall
# beside other builds at load ~12 on 2 cores);
# containerd, runc and the CNI plugins from Debian.
K8S_VERSION := v1.37.2
K8S_BIN     := bin/k8s
K8S_CMDS    := kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
# kubectl and the API server check each other's versions: stamp them.
K8S_LDFLAGS := -s -w $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
	-X $(p).gitVersion=$(K8S_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=37)
K8S_DEBIAN_PACKAGES := buildah containerd runc containernetworking-plugins iptables ca-certificates
HELM := $(K8S_BIN)/helm
K8S_IMAGES := $(IMAGE_TAR) bin/image/pause.tar bin/image/workload.tar
.PHONY: k8s-deps k8s-bins k8s-images k8s-test manifests check-manifests
k8s-deps:
	@missing=$$(for p in $(K8S_DEBIAN_PACKAGES); do \
		dpkg-query -W -f '$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing" $$missing; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing </dev/null; \
	fi
$(K8S_BIN)/kubelet: tools/kubernetes/go.mod
	@mkdir -p $(K8S_BIN)
	@echo "building Kubernetes $(K8S_VERSION): $(K8S_CMDS)"; start=$$(date +%s); \
	cd tools/kubernetes && CGO_ENABLED=0 nice go build -trimpath -ldflags '$(K8S_LDFLAGS)' \
		-o $(CURDIR)/$(K8S_BIN)/ $(addprefix k8s.io/kubernetes/cmd/,$(K8S_CMDS)); \
	echo "built Kubernetes in $$(( $$(date +%s) - start )) s"
$(K8S_BIN)/etcd: tools/kubernetes/etcd/go.mod
	cd tools/kubernetes/etcd && CGO_ENABLED=0 nice go build -trimpath -ldflags '-s -w' -o $(CURDIR)/$@ .
$(HELM): tools/kubernetes/helm/go.mod
	cd tools/kubernetes/helm && CGO_ENABLED=0 nice go build -trimpath -ldflags '-s -w' -o $(CURDIR)/$@ helm.sh/helm/v3/cmd/helm
k8s-bins: $(K8S_BIN)/kubelet $(K8S_BIN)/etcd $(HELM)

# The cluster's own pod sandbox (pause) and workload images: one static
# binary each (test/k8s/pause, test/k8s/workload).
k8s-images: image
	for app in pause workload; do \
		rm -rf bin/image/$$app && mkdir -p bin/image/$$app; \
		CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o bin/image/$$app/app ./test/k8s/$$app; \
		deploy/image/build.sh localhost/execsnoop-$$app:test test/k8s/Containerfile bin/image/$$app bin/image/$$app.tar; \
	done

# The chart on a real one-node cluster (test/k8s; root), run by `test`.
# It takes the cluster down again, also on failure, and fails if anything
# of it is left on the host.
k8s-test: k8s-deps k8s-bins k8s-images
	@start=$$(date +%s); \
	K8S_BIN_DIR=$(CURDIR)/$(K8S_BIN) AGENT_IMAGE=$(IMAGE_NAME) K8S_IMAGES="$(addprefix $(CURDIR)/,$(K8S_IMAGES))" \
		AGENT_IMAGE_TAR=$(CURDIR)/$(IMAGE_TAR) AGENT_IMAGE_PLATFORMS='$(IMAGE_PLATFORMS)' \
		go test -count=1 -v -timeout 30m ./test/k8s/; \
	echo "k8s-test took $$(( $$(date +%s) - start )) s"

# deploy/kubernetes holds the chart rendered with its defaults (agent only)
# and with the gateway, for `kubectl apply` without Helm.
manifests: $(HELM)
	$(HELM) lint --strict deploy/helm/otelcol-execsnoop
	for v in agent gateway; do \
		{ echo "# Rendered from deploy/helm/otelcol-execsnoop by make manifests; do not edit."; \
		  $(HELM) template otelcol-execsnoop deploy/helm/otelcol-execsnoop --namespace otelcol-execsnoop \
			$$( [ $$v = gateway ] && echo --set gateway.enabled=true ); } > deploy/kubernetes/otelcol-execsnoop-$$v.yaml; \
	done
check-manifests: manifests
	@changes=$$(git status --porcelain -- deploy/kubernetes); \
	if [ -n "$$changes" ]; then \
		echo "deploy/kubernetes is out of date; run 'make manifests' and commit:"; echo "$$changes"; exit 1; \
	fi; echo "deploy/kubernetes is up to date"
	# values.schema.json: wrong types and unknown keys fail, named (helm only);
	# every receiver setting renders and the collector validates the result;
	# the chart names no architecture and pins the agent to no node kind.
	K8S_BIN_DIR=$(CURDIR)/$(K8S_BIN) OTELCOL_EXECSNOOP_BIN=$(CURDIR)/$(OTELCOL) \
		go test -count=1 -run '^(TestValuesAreValidated|TestEveryReceiverSettingRenders|TestChartAssumesNoArchitecture)$$' ./test/k8s/

# Everything CI checks. The end-to-end tests run the built collector (and
# Jaeger and VictoriaLogs), found through OTELCOL_EXECSNOOP_BIN, JAEGER_BIN
# and VICTORIALOGS_BIN.
test: deps build vet $(JAEGER) $(VICTORIALOGS) $(HELM)
	OTELCOL_EXECSNOOP_BIN=$(CURDIR)/$(OTELCOL) JAEGER_BIN=$(CURDIR)/$(JAEGER) VICTORIALOGS_BIN=$(CURDIR)/$(VICTORIALOGS) \
		go test -count=1 ./...
	$(MAKE) validate
	$(MAKE) check-generated
	$(MAKE) check-manifests
	$(MAKE) test-kernels
	$(MAKE) k8s-test
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

# Go benchmarks (decoding, conversion, the receiver's per-event path, a
# cold hash's ms/MiB in internal/exehash, the process table's bytes per
# 10,000 processes in internal/proctable), then exec storms under each
# tracer next to libbpf-tools execsnoop, then BENCH_ROUNDS interleaved
# rounds of the CLI and collector built at BENCH_BEFORE (cached in
# bin/before-COMMIT; empty: skipped) against the current ones; the tables
# go to bench/results.md. BENCH_EXECS sets the storm size. Then the stage
# table (test/bench/stages.go): BENCH_STAGE_ROUNDS interleaved rounds of
# storms of BENCH_STAGE_EXECS under libbpf-tools, the CLI and the collector
# cut at each stage of config/otlp.yaml (and each codec), with syscall and
# allocation counts; `go run ./test/bench -stages-only` runs it alone.
BENCH_EXECS  ?= 20000
BENCH_ROUNDS ?= 3
BENCH_BEFORE ?= 07892c5
BENCH_STAGE_EXECS  ?= 5000
BENCH_STAGE_ROUNDS ?= 3
bench: build
	go test -run '^$$' -bench . -benchmem ./bpf/ ./internal/... ./receiver/...
	go build -o bin/execstorm ./cmd/execstorm
	go run ./test/bench -n $(BENCH_EXECS) -workers 1,2 -rounds $(BENCH_ROUNDS) -before '$(BENCH_BEFORE)' \
		-stages-n $(BENCH_STAGE_EXECS) -stages-rounds $(BENCH_STAGE_ROUNDS) -bin bin -out bench/results.md

# The probe on Debian's cloud kernels (bullseye 5.10, bookworm 6.1, trixie
# 6.12; amd64 under qemu-system-x86_64, RELEASE-arm64 under
# qemu-system-aarch64), each booted in QEMU (TCG) with a busybox initramfs
# that runs the bpf tests, the CLI's end-to-end tests and a getppid
# benchmark; see test/kernels. Kernels are cached under bin/kernels; the
# table goes to KERNELS_OUT. KERNELS picks releases (comma-separated).
DEBIAN_PACKAGES += qemu-system-x86 qemu-system-arm busybox-static bash cpio
# The trixie-arm64 guest runs the image's arm64 collector: make image needs buildah.
DEBIAN_PACKAGES += buildah
# Every release test/kernels knows (amd64 and arm64) by default, two
# guests at once on two cores; KERNELS=bookworm,trixie-arm64 picks some.
KERNELS     ?=
KERNELS_OUT ?= bin/kernels/results.md
# When the releases run hold trixie-arm64 (all do by default; it is the
# release test/kernels/fetch.go marks Collector, and the harness exits 2 if
# they disagree), test-kernels builds the image first and that guest also
# starts the collector of the image index's linux/arm64 variant and checks
# that an exec reaches its file exporter (-collector-image). That adds
# make image (above; 40 s wall, 18 s user warm at load 8), 2-3 s to read
# the index and 7-14 s of the guest; k8s-test builds the image again
# (image is phony).
comma            := ,
COLLECTOR_KERNEL := $(if $(KERNELS),$(filter trixie-arm64,$(subst $(comma), ,$(KERNELS))),trixie-arm64)
test-kernels: deps $(if $(COLLECTOR_KERNEL),image)
	go run ./test/kernels $(if $(KERNELS),-kernels $(KERNELS)) -out $(KERNELS_OUT) $(if $(COLLECTOR_KERNEL),-collector-image $(IMAGE_TAR))

# Host packages (.deb and .rpm) with a hardened systemd unit: deploy/packages.
# nfpm v2.45.2 is the newest nfpm that `go install` builds from the module
# proxy (v2.46+ need go.digitalxero.dev modules the proxy refuses).
NFPM_VERSION   := v2.45.2
NFPM           := bin/nfpm
PKG_VERSION    ?= $(shell sed -n 's/^  version: *//p' builder-config.yaml)
PKG_RELEASE    ?= 1
PKG_MAINTAINER ?= otelcol-execsnoop maintainers <maintainers@otelexecsnoop.invalid>
PKG_DIR        := bin/packages
# Tools of the package test (lintian, rpmlint, the guest's mmdebstrap and
# QEMU, debugfs to read results back without mounting).
PACKAGES_TEST_DEBIAN_PACKAGES := lintian rpmlint mmdebstrap qemu-system-x86 e2fsprogs

.PHONY: packages packages-deps test-packages
$(NFPM):
	GOBIN=$(CURDIR)/bin go install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

# The architectures packaged, as Debian and GOARCH name them (nfpm's arch;
# the .rpm says x86_64 and aarch64): bin/packages/
# otelcol-execsnoop_<version>-<release>_<arch>.deb and
# otelcol-execsnoop-<version>-<release>.<x86_64|aarch64>.rpm, each with the
# static binaries (GOOS=linux GOARCH=<arch> CGO_ENABLED=0) of bin/pkg/<arch>/.
# Measured on 2 cores beside a CI run (load 11-25): 1926 s wall (569 s user,
# 175 s sys) with arm64 cold in the Go build cache, 111 s warm (40 s user;
# most of the rest is nfpm's single-threaded gzip of four packages).
PKG_ARCHES := amd64 arm64
packages: $(NFPM)
	mkdir -p $(PKG_DIR)
	for a in $(PKG_ARCHES); do \
		mkdir -p bin/pkg/$$a; \
		(cd $(DIST_DIR) && CGO_ENABLED=0 GOOS=linux GOARCH=$$a go build -trimpath -ldflags='-s -w' -o $(CURDIR)/bin/pkg/$$a/otelcol-execsnoop .); \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$a go build -trimpath -ldflags='-s -w' -o bin/pkg/$$a/execsnoop ./cmd/execsnoop; \
	done
	sed 's|/etc/default/|/etc/sysconfig/|' deploy/packages/otelcol-execsnoop.service >bin/pkg/otelcol-execsnoop.rpm.service
	printf '%s\n' "- semver: \"$(PKG_VERSION)-$(PKG_RELEASE)\"" \
		"  date: \"$$(git log -1 --format=%cI 2>/dev/null || date -Is)\"" \
		"  packager: \"$(PKG_MAINTAINER)\"" "  changes:" \
		"    - note: \"Built from commit $$(git rev-parse --short HEAD 2>/dev/null || echo unknown).\"" >bin/pkg/changelog.yaml
	for a in $(PKG_ARCHES); do for p in deb rpm; do \
		PKG_ARCH=$$a PKG_VERSION='$(PKG_VERSION)' PKG_RELEASE='$(PKG_RELEASE)' PKG_MAINTAINER='$(PKG_MAINTAINER)' \
			$(NFPM) package --config deploy/packages/nfpm.yaml --packager $$p --target $(PKG_DIR)/; \
	done; done

packages-deps:
	@missing=$$(for p in $(PACKAGES_TEST_DEBIAN_PACKAGES); do \
		dpkg-query -W -f '$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing" $$missing; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing </dev/null; \
	fi

# lintian and rpmlint, then a Debian 12 VM under QEMU (TCG) where the .deb is
# installed, run, restarted, upgraded from release 0, broken (config error;
# BTF hidden, until the start limit), removed and purged. Cold, it first
# builds the guest with mmdebstrap (cached in bin/packages-vm). A cold run
# takes ~11 minutes at load ~7 (test/packages/README.md).
test-packages: packages-deps
	$(MAKE) packages PKG_RELEASE=0
	$(MAKE) packages PKG_RELEASE=1
	PACKAGES_DIR=$(CURDIR)/$(PKG_DIR) PACKAGES_VERSION=$(PKG_VERSION) PACKAGES_ARCHES='$(PKG_ARCHES)' \
		go test -count=1 -v -timeout 45m ./test/packages/
