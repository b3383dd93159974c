# hostctl — developer entry points. `make check` is what CI runs.
CARGO ?= cargo
ARM64_TARGET ?= aarch64-unknown-linux-musl

.PHONY: all build test lint fmt clippy check bench doc clean-state help

all: build

help: ## List targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

build: ## Build hostctl and node-agent (debug)
	$(CARGO) build --workspace --bins

# The end-to-end suites in tests/ run the real hostctl and node-agent
# binaries, so they are built first.
test: build ## Run every test (unit, integration, end-to-end)
	$(CARGO) test --workspace

fmt: ## Format the code
	$(CARGO) fmt --all

lint: ## fmt check + clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

check: lint test ## What CI runs: lint, then every test

bench: ## Benchmarks (numbers are printed; see README)
	$(CARGO) bench --workspace

release: ## Optimised binaries in target/release
	$(CARGO) build --release --workspace --bins
