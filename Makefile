# liberator — make targets. `make demo` and `make test` do all the set-up
# they need on a fresh machine with Go: the Debian packages listed in
# hack/apt-packages.txt (hack/deps.sh), the Go modules and the pinned
# test-bed binaries (hack/tools/build.sh).

SHELL := /usr/bin/env bash
export GOTOOLCHAIN := local

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
DATE    := $(DATE)
LDFLAGS := -s -w -X github.com/liberator-dev/liberator/internal/cli.Version=$(VERSION) \
	-X github.com/liberator-dev/liberator/internal/cli.Commit=$(COMMIT) \
	-X github.com/liberator-dev/liberator/internal/cli.Date=$(DATE)
# liberator-agent (cmd/liberator-agent) keeps its build information in
# package main: it links nothing of internal/cli.
AGENT_LDFLAGS := -s -w -X main.Version=$(VERSION) -X main.Commit=$(COMMIT) -X main.Date=$(DATE)
# The container image: `make image IMAGE=registry.example/liberator:v1`.
IMAGE   ?= ghcr.io/liberator-dev/liberator:$(VERSION)
# The platforms of the image index (comma-separated).
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64

.PHONY: all deps build test test-unit test-e2e verify verify-model generate docs tools bench demo demo-up demo-down clean image image-binaries image-tarball image-fence-agents

all: build

deps: ## install the Debian packages in hack/apt-packages.txt that are missing (as root; otherwise prints the command)
	hack/deps.sh

build: ## the liberator binary and the agent's own (liberator-agent), in bin/
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/liberator ./cmd/liberator
	CGO_ENABLED=0 go build -trimpath -ldflags '$(AGENT_LDFLAGS)' -o bin/liberator-agent ./cmd/liberator-agent
	ln -sf liberator bin/kubectl-liberator
	ln -sf liberator bin/kubectl_complete-liberator

generate: ## regenerate deepcopy and the CRD from api/, the docs and chart values from internal/config, and the dashboard (hack/monitoring)
	hack/update-generated.sh
	hack/update-docs.sh
	go -C hack/monitoring run .

docs: ## regenerate docs/configuration.md and the chart's config values from internal/config
	hack/update-docs.sh

image: ## the container image for $(IMAGE_PLATFORMS), one index: docker buildx where a Docker engine answers, else without an engine (image-tarball)
	@if docker info >/dev/null 2>&1; then \
		if docker buildx version >/dev/null 2>&1; then \
			echo "docker buildx build --platform $(IMAGE_PLATFORMS) --sbom=true -t $(IMAGE) --output type=oci,dest=bin/liberator-image.tar"; \
			mkdir -p bin && docker buildx build --platform $(IMAGE_PLATFORMS) --sbom=true --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) --build-arg DATE=$(DATE) \
				-t $(IMAGE) --output type=oci,dest=bin/liberator-image.tar . ; \
		else \
			echo "docker buildx is not installed: docker build for this machine's platform only (the engine-less build, make image-tarball, writes both)"; \
			docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) --build-arg DATE=$(DATE) -t $(IMAGE) . ; \
		fi; \
	else \
		echo "no Docker engine answers (docker info failed): building the image without one"; \
		$(MAKE) --no-print-directory image-tarball DATE=$(DATE); \
	fi

# The static binaries of each platform, bin/linux_ARCH/, for the image.
image-binaries:
	@set -e; for p in $$(echo '$(IMAGE_PLATFORMS)' | tr , ' '); do arch=$${p#linux/}; \
		echo "go build $$p: bin/linux_$$arch/liberator bin/linux_$$arch/liberator-agent"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch go build -trimpath -ldflags '$(LDFLAGS)' -o bin/linux_$$arch/liberator ./cmd/liberator; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch go build -trimpath -ldflags '$(AGENT_LDFLAGS)' -o bin/linux_$$arch/liberator-agent ./cmd/liberator-agent; \
	done

image-tarball: image-binaries ## without a container engine: the OCI image index for $(IMAGE_PLATFORMS) (bin/liberator-image/ and bin/liberator-image.tar) and its CycloneDX SBOM (bin/liberator-image.sbom.cdx.json, also attached to the index)
	go -C hack/imagebuild run . -bin-dir $(CURDIR)/bin -platforms $(IMAGE_PLATFORMS) \
		-out $(CURDIR)/bin/liberator-image.tar -layout-dir $(CURDIR)/bin/liberator-image -sbom $(CURDIR)/bin/liberator-image.sbom.cdx.json \
		-tag $(IMAGE) -version $(VERSION) -revision $(COMMIT) -created $(DATE)
	@echo "push it with: skopeo copy --all oci:bin/liberator-image:$(lastword $(subst :, ,$(IMAGE))) docker://$(IMAGE) (or oras cp -r --from-oci-layout bin/liberator-image:TAG, with the SBOM; docs/install.md)"

image-fence-agents: ## the fence-agents variant (Debian's fence agents for provider fence-agent) for this machine's platform, without an engine: bin/liberator-fence-agents-image{/,.tar,.sbom.cdx.json}; downloads about 24 MB of Debian packages into ~/.cache/liberator/debs
	$(MAKE) --no-print-directory image-binaries IMAGE_PLATFORMS=linux/$$(go env GOARCH) DATE=$(DATE)
	go -C hack/imagebuild run . -variant fence-agents -deb-dir $${XDG_CACHE_HOME:-$$HOME/.cache}/liberator/debs \
		-bin-dir $(CURDIR)/bin -platforms linux/$$(go env GOARCH) \
		-out $(CURDIR)/bin/liberator-fence-agents-image.tar -layout-dir $(CURDIR)/bin/liberator-fence-agents-image \
		-sbom $(CURDIR)/bin/liberator-fence-agents-image.sbom.cdx.json \
		-tag $(IMAGE)-fence-agents -version $(VERSION) -revision $(COMMIT) -created $(DATE)

verify: ## formatting, vet, staticcheck, generated files
	hack/verify.sh

test-unit: ## unit tests (pure logic, fakes), the image build (hack/imagebuild: the multi-arch index, the SBOM, the fence-agents variant run restricted against ipmi_sim) and the krew manifest (hack/krew)
	go test -race -count=1 ./...
	go -C hack/imagebuild test -count=1 -timeout 20m ./...
	go -C hack/krew test -count=1 ./...

.PHONY: chart
chart: ## the Helm chart as a release publishes it: bin/chart/liberator-VERSION.tgz (chart version and appVersion from git describe); CHART_REGISTRY=oci://HOST/PATH pushes it there (an OCI artifact)
	go -C hack/chart run . -helm "$$(hack/tools/manifest-tools.sh)/helm" -chart $(CURDIR)/charts/liberator -out $(CURDIR)/bin/chart -version $(VERSION) $(if $(CHART_REGISTRY),-push $(CHART_REGISTRY))

.PHONY: krew
KREW_PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
krew: ## the kubectl plugin's release archives (with LICENSE) and krew manifest (bin/krew/liberator.yaml), checked with krew's validate-krew-manifest and krew install
	@set -e; for p in $(KREW_PLATFORMS); do os=$${p%/*}; arch=$${p#*/}; \
		echo "go build -o bin/krew/$${os}_$$arch/liberator ($$os/$$arch)"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -ldflags '$(LDFLAGS)' -o bin/krew/$${os}_$$arch/liberator ./cmd/liberator; \
	done
	go -C hack/krew run . -dir $(CURDIR)/bin/krew -version $(VERSION) -license $(CURDIR)/LICENSE

tools: ## build the pinned test-bed binaries (cached outside the tree)
	hack/tools/build.sh

test-e2e: tools build ## the end-to-end failover suite on a local cluster
	go test -tags e2e -count=1 -timeout 40m -parallel 4 -v ./test/e2e/...

.PHONY: verify-monitoring
verify-monitoring: ## the alert rules through the pinned promtool (check rules, test rules), the dashboard generated by hack/monitoring, every query against the metrics the controller exports
	go -C hack/monitoring test -count=1 -v ./...

.PHONY: fuzz
# FUZZTIME bounds the fuzzing of the config loader in make test.
FUZZTIME ?= 60s
fuzz: ## fuzz the config loader (FuzzLoad) for FUZZTIME (60s): no panic, no hang, every refusal short and naming its field
	go test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./internal/config/

verify-model: ## model-check the takeover protocol and the agent with SPIN (model/): the properties hold, the broken variants must fail
	model/verify.sh

# MAKE_START is when this make began, for the times test and demo print.
MAKE_START := $(shell date +%s)
ELAPSED = $$(( $$(date +%s) - $(MAKE_START) ))

test: deps verify verify-model verify-monitoring test-unit fuzz test-e2e ## everything CI runs
	@s=$(ELAPSED); echo "make test: every stage passed in $$((s/60)) min $$((s%60)) s (set-up included)"

bench: ## decision latency and cache memory at 5,000 nodes / 100,000 pods
	go test -run '^$$' -bench 'Decision|Scan' -benchmem -benchtime 2000x ./internal/controller/
	go test -run '^$$' -bench 'CacheMemory' -benchtime 1x ./internal/controller/

.PHONY: bench-scale
# The size and timing of bench-scale; e.g. SCALE_ARGS='-scale.nodes=1000 -scale.pods=20000'
# for a smaller run (see docs/scale.md for every flag).
SCALE_ARGS ?= -scale.nodes=5000 -scale.pods=100000 -scale.slices=10 -scale.lease=40 -scale.unhealthyAfter=40s -scale.steady=60s -scale.stormLimit=0
bench-scale: tools build ## the controller against a real API server with 5,000 kwok nodes and 100,000 pods: RSS, CPU, sync, requests/s beside the seed's, detection lag, a 30% power-loss storm (SCALE_ARGS to resize)
	go test -tags e2e -count=1 -timeout 150m -v -run '^TestScale$$' ./test/e2e/scale/ -args -scale.binary=$(CURDIR)/bin/liberator $(SCALE_ARGS)

demo: deps tools build ## power off mysql-0's node on a local cluster and watch the takeover (AGENT=1: cut it off; its agent's watchdog resets it)
	go run ./test/e2e/demo $(if $(AGENT),--agent)
	@s=$(ELAPSED); echo "make demo: done in $$((s/60)) min $$((s%60)) s (set-up included)"

demo-up: deps tools build ## start a local cluster with liberator and the seed's MySQL, and keep it (AGENT=1: with agents)
	go run ./test/e2e/demo --keep $(if $(AGENT),--agent)

demo-down: ## stop the cluster started by demo-up
	go run ./test/e2e/demo --down

clean:
	rm -rf bin
