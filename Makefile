# hostctl — developer entry points. `make check` is what CI runs.
CARGO ?= cargo
ARM64_TARGET ?= aarch64-unknown-linux-musl

.PHONY: all build test lint fmt check bench release dist node-agent-dist node-agent-arm64 arm64-toolchain observability-up observability-down help

all: build

help: ## List targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

build: ## Build hostctl and node-agent (debug)
	$(CARGO) build --workspace --bins

# The end-to-end suites in tests/ run the real hostctl and node-agent
# binaries, so they are built first.
test: build node-agent-dist ## Run every test (unit, integration, end-to-end)
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

# `make dist`: hostctl for this machine and, beside it (where hostctl looks),
# the node agent the VMs run: aarch64 Linux on an Apple-Silicon Mac, this
# machine's architecture on Linux; size-optimised for user-data either way.
ifeq ($(shell uname -s),Darwin)
NODE_AGENT_FOR_VMS := target/$(ARM64_TARGET)/node-dist/node-agent
NODE_AGENT_BUILD := node-agent-arm64
else
NODE_AGENT_FOR_VMS := target/node-dist/node-agent
NODE_AGENT_BUILD := node-agent-dist
endif

dist: $(NODE_AGENT_BUILD) ## hostctl + the VMs' node agent side by side in dist/
	$(CARGO) build --release -p host-agent
	mkdir -p dist
	cp target/release/hostctl dist/hostctl
	cp $(NODE_AGENT_FOR_VMS) dist/node-agent

node-agent-dist: ## The node agent as shipped in user-data (size-optimised, this machine's arch)
	$(CARGO) build --profile node-dist -p node-agent

# Apple-Silicon VMs run aarch64 Linux: a static musl build, cross-linked by
# zig. `arm64-toolchain` installs what is missing, so on a Mac `make dist`
# needs only Rust (rustup) and python3: the rustup target, and cargo-zigbuild
# with zig from PyPI (both pinned) in a virtualenv under target/ (Homebrew's
# python refuses `pip install` outside one). CI builds x86_64 only.
ZIG_VENV ?= target/zig-venv
CARGO_ZIGBUILD_VERSION ?= 0.24.0
ZIGLANG_VERSION ?= 0.17.0

arm64-toolchain: ## Install the aarch64 target, cargo-zigbuild and zig when missing
	@rustup target list --installed | grep -qx '$(ARM64_TARGET)' || rustup target add $(ARM64_TARGET)
	@test -x $(ZIG_VENV)/bin/cargo-zigbuild || { \
	  python3 -m venv $(ZIG_VENV) && \
	  $(ZIG_VENV)/bin/pip install --quiet 'cargo-zigbuild==$(CARGO_ZIGBUILD_VERSION)' 'ziglang==$(ZIGLANG_VERSION)'; }

# cargo-zigbuild finds zig as `python3 -m ziglang`: the venv's python comes first.
node-agent-arm64: arm64-toolchain ## The node agent for Apple-Silicon VMs (aarch64 musl, static)
	PATH="$(CURDIR)/$(ZIG_VENV)/bin:$$PATH" $(CARGO) zigbuild --profile node-dist -p node-agent --target $(ARM64_TARGET)

# Tempo + Grafana for hostctl's own provisioning traces (docs/tracing.md).
OBSERVABILITY_COMPOSE ?= deploy/observability/compose.yaml
observability-up: ## Start Tempo (OTLP on 127.0.0.1:4317) and Grafana (http://127.0.0.1:3000)
	docker compose -f $(OBSERVABILITY_COMPOSE) up -d

observability-down: ## Stop them (traces are kept in a volume; add -v to drop it)
	docker compose -f $(OBSERVABILITY_COMPOSE) down

# The QEMU provider's test image (Debian bookworm, systemd, cloud-init; no
# node agent: it arrives through user-data). Cached by a hash of the script;
# needs root and debootstrap. Prints the image directory.
test-image: ## Build (or reuse) the QEMU test image
	tools/test-image/build.sh
