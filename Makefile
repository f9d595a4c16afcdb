# Fanout — developer and CI entry points. `make` (or `make help`) lists the targets.
#
# Every target that has a `## description` after its name shows up in `make help`.
# Tool versions are pinned in go.mod's `tool` block (golangci-lint): `go tool NAME`.

SHELL       := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS   += --no-print-directory

GO        ?= go
BIN       := bin
# Test parallelism: one test binary at a time. The integration tests bind real ports,
# start Chromium/FFmpeg and measure timing on a 2-core machine, so running
# packages side by side would make them collide or flake. Raise it locally if you like.
TEST_P    ?= 1
TEST_TIMEOUT ?= 25m
TEST_FLAGS ?=
FUZZTIME  ?= 60s
SOAK_TIMEOUT ?= 90m
DURATION  ?= 3m
BENCH_RESULTS ?= bench/results/

.PHONY: help deps deps-run deps-test deps-generate build run test race lint fuzz bench bench-cluster soak \
	generate generate-check clean

help: ## List the targets (the default goal)
	@echo "Fanout make targets:"
	@grep -hE '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-15s %s\n", $$1, $$2}'
	@echo
	@echo "Variables: FUZZTIME=$(FUZZTIME) TEST_P=$(TEST_P) TEST_TIMEOUT=$(TEST_TIMEOUT) TEST_FLAGS='$(TEST_FLAGS)'"

## ---- dependencies (Debian packages; idempotent, installs only what is missing) ----

deps: deps-run deps-test ## Install every missing Debian package for running and testing (root or sudo)

deps-run: ## Install what building and running fanout needs (FFmpeg dev headers for the cgo transcoder)
	@./.ci/deps.sh run

deps-test: ## Install the missing test packages (deps-run's, ffmpeg chromium nftables iproute2 netcat curl, the interop clients: GStreamer, aiortc, firefox-esr, puppeteer-core)
	@./.ci/deps.sh test

deps-generate: ## Install what `make generate` needs for bpf2go (clang llvm libbpf-dev)
	@./.ci/deps.sh generate

## ---- build and run ----

# .ci/build.sh runs `go build -v` and, while the first build compiles the cgo FFmpeg
# bindings (minutes, silent in the compiler), says every 30 s that it is still going.
build: deps-run ## Build bin/fanout and bin/fanout-bench (installs the FFmpeg headers when missing)
	@GO=$(GO) ./.ci/build.sh $(BIN)/fanout ./cmd/fanout
	@GO=$(GO) ./.ci/build.sh $(BIN)/fanout-bench ./cmd/fanout-bench

run: deps-run ## Build bin/fanout only (with progress), then start it on its defaults; it prints the URLs
	@GO=$(GO) ./.ci/build.sh $(BIN)/fanout ./cmd/fanout
	exec ./$(BIN)/fanout

## ---- tests ----

# `go build ./...` first compiles every package with full parallelism, so the
# serial (-p $(TEST_P)) test run below only compiles the test files themselves.
test: deps-test ## Install test deps, then run the whole suite (go test -count=1 -p 1 ./...)
	$(GO) build ./...
	$(GO) test -count=1 -p $(TEST_P) -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) ./...

race: deps-test ## Run the whole suite under the race detector
	$(GO) test -race -count=1 -p $(TEST_P) -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) ./...

lint: ## Run golangci-lint (version pinned in go.mod; config in .golangci.yml)
	$(GO) tool golangci-lint run ./...

# Every `func FuzzX(f *testing.F)` in a *_test.go file is found by grep, so a new
# fuzzer runs here without touching this file. Each runs for FUZZTIME (default 60s):
#   make fuzz FUZZTIME=10s
fuzz: ## Run every FuzzX in the tree for FUZZTIME each (default 60s)
	@found=0; \
	while IFS=: read -r file line; do \
		name=$$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$$line"); \
		pkg=./$$(dirname "$${file#./}"); \
		found=$$((found + 1)); \
		echo "== fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$${name}\$$" -fuzztime $(FUZZTIME) "$$pkg" </dev/null; \
	done < <(grep -rE --include='*_test.go' --exclude-dir=.git --exclude-dir=testdata \
		--exclude-dir=vendor '^func Fuzz[A-Za-z0-9_]*\(' . | sort); \
	if [ "$$found" -eq 0 ]; then echo "fuzz: no func Fuzz... found"; else echo "fuzz: ran $$found fuzzer(s)"; fi

# The default scenario: fastpath micro-benchmarks, then Fanout (pinned to CPU 0) and the pion
# reference relay under the same fanout-bench load (100 subscribers, 10 s, floor beside each),
# reports with machine facts in bench/results/. Larger sweeps: bench/run.sh fanout.
bench: build ## Run fastpath micro-benchmarks, then fanout-bench against Fanout and a pion relay (< 2 min)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2000x ./fastpath/...
	@set -e; CANDIDATE=127.0.0.1 SRS_HTTP_API_LISTEN=127.0.0.1:19850 SRS_RTC_SERVER_LISTEN=18000 \
		SRS_HTTP_SERVER_ENABLED=off taskset -c 0 ./$(BIN)/fanout >$(BENCH_RESULTS)/fanout.log.tmp 2>&1 & pid=$$!; \
	trap "kill $$pid 2>/dev/null" EXIT; sleep 1; \
	./$(BIN)/fanout-bench -whip 'http://127.0.0.1:19850/rtc/v1/whip/?app=live&stream=bench' \
		-whep 'http://127.0.0.1:19850/rtc/v1/whep/?app=live&stream=bench' -metrics http://127.0.0.1:19850/metrics \
		-server-pid $$pid -subs 100 -dur 10s -floor -server-cpus 0 -bench-cpus 1 -report $(BENCH_RESULTS)/; \
	kill $$pid; BIN=./$(BIN)/fanout-bench DUR=10s sh bench/run.sh default

# Issue 17's scale-out: one redis-server, origin + 2 edges against one node at the same players
# per node (N_LIST, default "200 500"), alternated ROUNDS (2) times; JSON and summary.md into
# bench/results/cluster-TIMESTAMP/ (bench/cluster.sh; about 6 minutes).
bench-cluster: ## Run the cluster scale-out benchmark: 3 Fanout nodes on Redis vs 1 node (~6 min)
	sh bench/run.sh cluster

# make soak DURATION=60m: churn under 2 % loss for DURATION (SOAK_TIMEOUT must exceed it).
soak: deps-test ## Run the long soak tests (build tag `soak`, tests named Soak...) for DURATION (default 3m)
	FANOUT_SOAK_DURATION=$(DURATION) $(GO) test -tags soak -run Soak -count=1 -p 1 -timeout $(SOAK_TIMEOUT) ./...

## ---- code generation ----

generate: ## Run go generate ./... (bpf2go needs clang: make deps-generate)
	$(GO) generate ./...

generate-check: ## Regenerate and fail if that changed any file (generated code must be committed)
	@before=$$(git status --porcelain); \
	$(GO) generate ./...; \
	after=$$(git status --porcelain); \
	if [ "$$before" != "$$after" ]; then \
		echo "generate-check: go generate changed files; commit the regenerated code:"; \
		diff <(echo "$$before") <(echo "$$after") || true; exit 1; \
	fi; echo "generate-check: generated files are current"

clean: ## Remove build outputs (bin/, test binaries, coverage and profile files)
	rm -rf $(BIN)
	find . -path ./.git -prune -o -type f \( -name '*.test' -o -name '*.coverprofile' \
		-o -name 'coverage.out' -o -name 'coverage.html' -o -name 'cpu.prof' -o -name 'mem.prof' \) \
		-print -exec rm -f {} +
	rm -f bench/results/*.tmp
