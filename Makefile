# avouch — two commands do all setup: `make run` and `make check`.
GO          ?= go
BIN         := bin/avouch
STATICCHECK_VERSION := v0.8.2
GOBIN       := $(shell $(GO) env GOPATH)/bin
FUZZTIME    ?= 10s

.PHONY: all build run check tools vet staticcheck test fuzz-short bench fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/avouch

# Starts the STS with zero configuration: ./avouch-data (SQLite, generated
# keys and TLS certificate), HTTPS on :9443. The first start prints the admin
# password (or set AVOUCH_ADMIN_PASSWORD).
run: build
	./$(BIN) serve

# Installs missing test tools (as root: apt/npm), then runs every test with
# external tools required: a missing tool fails here instead of skipping.
check: tools vet staticcheck test fuzz-short

tools:
	bash scripts/install-test-tools.sh
	npm ci --prefix test/browser/js --no-audit --no-fund
	npm ci --prefix test/console/js --no-audit --no-fund
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

vet:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l cmd internal test 2>/dev/null); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

staticcheck:
	$(GOBIN)/staticcheck ./...

test:
	AVOUCH_REQUIRE_TOOLS=1 $(GO) test -count=1 -timeout 20m ./...

# The measurement setup of docs/PERFORMANCE.md: Go benchmarks of the Issue
# pipeline beside the raw signing rate, then the server pinned to core 0 and
# `avouch bench` to core 1 (taskset). BENCH_DURATION=15s by default.
BENCH_DURATION ?= 15s
bench:
	bash scripts/bench.sh $(BENCH_DURATION)

# Every fuzz target for a few seconds (FUZZTIME, default 5s); part of check.
fuzz-short:
	bash scripts/fuzz-short.sh

# Long fuzz runs (make check runs none; see docs/SECURITY.md when it exists).
fuzz:
	@for pkg_target in ./internal/safexml:FuzzParse ./internal/xmlsec:FuzzCanonicalize ./internal/xmlsec:FuzzVerify ./internal/xmlenc:FuzzDecrypt ./internal/keys/keystore:FuzzLoad; do \
		pkg=$${pkg_target%%:*}; target=$${pkg_target##*:}; \
		echo "== $$target ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

clean:
	rm -rf bin
