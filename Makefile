# govs build and test entry points. `make test` is what CI runs (see README).
# Go from PATH, else where the official tarball installs it.
GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
FUZZTIME ?= 15s
PKGS    := ./...

.PHONY: all build test lint unit fuzz generate check-generate bench-dataplane bench-http bench-smoke demo clean deb test-deb test-just-booted

all: build

build:
	$(GO) build -o bin/govs ./cmd/govs

# Everything CI checks, in order of cost.
test: lint check-generate test-deb unit test-just-booted fuzz bench-smoke

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

# Unit, packet (BPF_PROG_TEST_RUN) and privileged netns tests. Privileged
# tests skip themselves when not root.
unit:
	$(GO) test -count=1 -timeout 20m $(PKGS)

# The tests again, except the slow netns ones, as if the machine had booted
# a minute ago (a time namespace; scripts/as-if-booted.sh): nothing may
# depend on the uptime.
test-just-booted:
	bash scripts/as-if-booted.sh $(GO) test -count=1 -timeout 10m -skip Privileged $(PKGS)

# Short fuzzing runs of each fuzz target (longer: make fuzz FUZZTIME=5m). A run
# that ends with Go's "context deadline exceeded" but no failing input is a
# harness hiccup at the end of -fuzztime, not a finding: it is run once more.
fuzz:
	@set -e; for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs grep -H -o '^func Fuzz[A-Za-z0-9_]*' | sed 's/:func /:/'); do \
		file=$${spec%%:*}; fn=$${spec##*:}; dir=$$(dirname $$file); \
		echo "fuzz $$dir $$fn ($(FUZZTIME))"; \
		out=$$($(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) $$dir 2>&1) && { echo "$$out" | tail -2; continue; }; \
		echo "$$out" | tail -20; \
		if echo "$$out" | grep -q 'Failing input written'; then exit 1; fi; \
		echo "fuzz $$dir $$fn: the fuzzer stopped without a failing input (Go's end-of-run timeout); running it again"; \
		$(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) $$dir; \
	done

# Regenerate the committed BPF objects and their Go bindings (needs clang).
generate:
	$(GO) generate ./internal/dataplane/... ./internal/decap/... ./internal/fwmark/... ./bench/...

# The committed objects must be what the sources compile to (clang 14 on
# Debian 12 gives byte-identical output, see docs/dataplane.md).
check-generate: generate
	git diff --exit-code -- internal/dataplane internal/decap internal/fwmark bench

# The Debian package (nfpm, fetched through the module proxy at a fixed
# version). Without a v* tag the version is 0~git<commit time>.<commit>, which
# sorts by commit time.
NFPM    := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
GOARCH  ?= $(shell $(GO) env GOARCH)
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' 2>/dev/null | sed 's/^v//; s/-/+/g' | grep . || \
	echo "0~git$$(TZ=UTC git log -1 --date=format-local:%Y%m%d%H%M%S --format=%cd).$$(git rev-parse --short=12 HEAD)")
DEB     := bin/govs_$(VERSION)_$(GOARCH).deb

deb:
	@mkdir -p bin/pkg
	CGO_ENABLED=0 GOARCH=$(GOARCH) $(GO) build -trimpath -buildvcs=true -ldflags='-s -w' -o bin/pkg/govs ./cmd/govs
	rm -rf bin/pkg/man && $(GO) run ./cmd/govs man bin/pkg/man >/dev/null && gzip -9n bin/pkg/man/*.1
	rm -f bin/govs_*.deb
	VERSION=$(VERSION) GOARCH=$(GOARCH) $(GO) run $(NFPM) package --config packaging/nfpm.yaml --packager deb --target $(DEB)

# Install the package into an empty root with dpkg, check what it put
# there, and remove it again.
test-deb: deb
	bash scripts/test-deb.sh $(DEB)

# Data-plane throughput: kernel forwarding vs XDP_DROP vs govs DR (root).
bench-dataplane:
	$(GO) run ./bench/dataplane

bench-http:
	$(GO) run ./bench/http

# The benchmarks run once, short, so a path that broke shows in CI: every
# data-plane path must deliver all its frames, every HTTP case must complete
# requests. Rates are not checked (benchmarks, not tests).
bench-smoke:
	$(GO) run ./bench/dataplane -packets 65536 -runs 1 -check
	$(GO) run ./bench/http -duration 1s

# The main job: the scenario in network namespaces, tested and taken down
# again (needs root). `govs check` of the scenario's own file comes first.
demo: build
	@if [ -f ../shared/fixtures/seed-keepalived.conf ]; then ./bin/govs check -f ../shared/fixtures/seed-keepalived.conf; fi
	./bin/govs lab demo

clean:
	rm -rf bin
