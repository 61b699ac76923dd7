# Kick: build, package, test and benchmark. `make help` lists the targets.
#
# The repository root is also the Puppet module `psick` (Forge name kick-psick):
# metadata.json + tasks/*.json, the entry tasks/puppet_agent (POSIX sh, in git) and the static
# task binaries `make task` stages at files/<arch>/psick-task (x86_64 and aarch64).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO       ?= cargo
TARGET_DIR  := $(or $(CARGO_TARGET_DIR),target)
# The node-side task: one static executable per architecture, size-optimised profile `task`,
# staged at files/<arch>/psick-task; the entry tasks/puppet_agent execs the node's own.
TASK_TARGET := x86_64-unknown-linux-gnu
TASK_BUILT  := $(TARGET_DIR)/$(TASK_TARGET)/task/psick-task
TASK_ENTRY  := tasks/puppet_agent
TASK_STAGED := files/x86_64/psick-task
# aarch64 with Debian's rustc-web (install-deps.sh: rustc-web, libstd-rust-web-dev:arm64,
# gcc-aarch64-linux-gnu), called by its full path through RUSTC: PATH keeps rustup's cargo and
# rustc first. Its own target dir, so the two compilers never share artefacts.
DEB_RUSTC         ?= /usr/bin/rustc
AARCH64_TARGET    := aarch64-unknown-linux-gnu
AARCH64_DIR       := $(TARGET_DIR)/debian-rustc
AARCH64_BUILT     := $(AARCH64_DIR)/$(AARCH64_TARGET)/task/psick-task
AARCH64_STAGED    := files/aarch64/psick-task
AARCH64_ENV       := RUSTC=$(DEB_RUSTC) CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc

MODULE_NAME := $(shell sed -n 's/^ *"name": *"\([^"]*\)".*/\1/p' metadata.json | head -n1)
VERSION     := $(shell sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' metadata.json | head -n1)
MODULE_DIR  := $(MODULE_NAME)-$(VERSION)
MODULE_TGZ  := pkg/$(MODULE_DIR).tar.gz

# The loopback puppetserver used by the real-stack tests and the demo.
PS_STATE    ?= /tmp/kick-puppet-stack
export PS_STATE

.PHONY: help deps dist-deps build release task module dist lint test test-only bench demo demo-up demo-down stack-up stack-down puppetdb-up puppetdb-down clean

help: ## list the targets
	@echo "Kick make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | awk -F'\t' '{printf "  %-11s %s\n", $$1, $$2}'

deps: ## install the Debian packages the tests, the demo and the benchmarks need (checks first)
	tests/scripts/install-deps.sh

dist-deps: ## install-deps.sh --dist: also cargo-deb and cargo-generate-rpm (pinned) for `make dist`
	tests/scripts/install-deps.sh --dist

build: task ## debug build of the whole workspace (what the tests use) + the static task
	$(CARGO) build --workspace --all-targets

release: ## optimised build of the workspace binaries
	$(CARGO) build --workspace --release

task: ## static task binaries (x86_64; aarch64 with Debian's rustc-web), staged at files/<arch>/psick-task
	RUSTFLAGS="-C target-feature=+crt-static" \
	  $(CARGO) build -p psick-task --profile task --target $(TASK_TARGET)
	@tests/scripts/deb-rustc.sh check $(DEB_RUSTC) $(AARCH64_TARGET)
	$(AARCH64_ENV) RUSTFLAGS="-C target-feature=+crt-static" \
	  $(CARGO) build -p psick-task --profile task --target $(AARCH64_TARGET) --target-dir $(AARCH64_DIR)
	install -D -m 0755 $(TASK_BUILT) $(TASK_STAGED)
	install -D -m 0755 $(AARCH64_BUILT) $(AARCH64_STAGED)
	@for f in $(TASK_STAGED):x86-64 $(AARCH64_STAGED):aarch64; do b=$${f%:*} arch=$${f#*:}; \
	  file -L $$b | grep -Eq 'statically linked|static-pie linked' \
	    || { echo "error: $$b is not statically linked: $$(file -L $$b)" >&2; exit 1; }; \
	  file -L $$b | grep -q " $$arch, version" || { echo "error: $$b is not $$arch: $$(file -L $$b)" >&2; exit 1; }; \
	  [ "$$(stat -c %s $$b)" -lt 2097152 ] || { echo "error: $$b is 2 MiB or more" >&2; exit 1; }; \
	  echo "staged $$b: $$(stat -c %s $$b) bytes, static, $$arch"; done
	@test -x $(TASK_ENTRY) || { echo "error: $(TASK_ENTRY) (the tasks' entry, in git) is missing or not executable" >&2; exit 1; }

# The tarball is reproducible: fixed order, owner and mtime (the last commit's time).
module: task ## Forge tarball pkg/kick-psick-<version>.tar.gz (metadata.json README.md LICENSE tasks/ files/, both architectures)
	rm -rf pkg/$(MODULE_DIR) $(MODULE_TGZ)
	install -d pkg/$(MODULE_DIR)/tasks pkg/$(MODULE_DIR)/files
	install -m 0644 metadata.json README.md LICENSE pkg/$(MODULE_DIR)/
	install -m 0644 tasks/*.json pkg/$(MODULE_DIR)/tasks/
	install -m 0755 $(TASK_ENTRY) pkg/$(MODULE_DIR)/tasks/
	install -m 0644 files/install-pxp-module.sh pkg/$(MODULE_DIR)/files/
	install -D -m 0755 $(TASK_STAGED) pkg/$(MODULE_DIR)/$(TASK_STAGED)
	install -D -m 0755 $(AARCH64_STAGED) pkg/$(MODULE_DIR)/$(AARCH64_STAGED)
	tar --sort=name --owner=0 --group=0 --numeric-owner \
	  --mtime="@$$(git log -1 --format=%ct 2>/dev/null || echo 0)" \
	  -C pkg -cf - $(MODULE_DIR) | gzip -n > $(MODULE_TGZ)
	rm -rf pkg/$(MODULE_DIR)
	@tar -tvzf $(MODULE_TGZ)

dist: dist-deps module ## .deb and .rpm of kick and kick-orchestrator (static) into pkg/, beside the module tarball
	packaging/dist.sh

lint: ## rustfmt check, clippy -D warnings, metadata-json-lint
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@command -v metadata-json-lint >/dev/null \
	  || { echo "error: metadata-json-lint not found: run make deps (tests/scripts/install-deps.sh)" >&2; exit 1; }
	metadata-json-lint metadata.json
	bash -n tests/scripts/*.sh .ci/run
	sh -n files/install-pxp-module.sh
	sh -n tasks/puppet_agent
	bash -n packaging/dist.sh
	sh -n packaging/kick-orchestrator/first-start.sh

test: dist-deps task module dist ## everything: unit, integration, real-Puppet end-to-end suite (the aarch64 task under qemu, the packages installed), lint
	tests/scripts/make-test.sh

test-only: ## the test suites only, against an already running stack (KICK_PUPPET_STACK)
	$(CARGO) nextest run --workspace

bench: deps task ## benchmarks (figures go to docs/benchmarks.md)
	@test -x crates/psick-task/bench/bench.sh \
	  || { echo "error: crates/psick-task/bench/bench.sh is missing" >&2; exit 1; }
	crates/psick-task/bench/bench.sh $(TASK_BUILT)
	crates/psick-task/bench/module-bench.sh $(TASK_BUILT)
	crates/psick-task/bench/entry-bench.sh $(TASK_STAGED)
	$(CARGO) build --release -p kick-orchestrator --bins
	$(TARGET_DIR)/release/orchestrator-bench
	CARGO_TARGET_DIR=$(TARGET_DIR) crates/kick/bench/bench.sh
	CARGO_TARGET_DIR=$(TARGET_DIR) crates/kick/bench/rollout.sh
	CARGO_TARGET_DIR=$(TARGET_DIR) crates/orchestrator/bench/ssh-scale.sh

demo: deps ## the main job: loopback puppetserver + three real SSH nodes + the orchestrator; noop, real, converged, drift runs
	tests/scripts/demo.sh all

demo-up: deps ## start the demo (stack, nodes, orchestrator) and leave it running to try kick by hand
	tests/scripts/demo.sh up

demo-down: ## stop what demo-up started, by PID
	tests/scripts/demo.sh down

stack-up: ## start (or reuse) the loopback puppetserver in PS_STATE
	tests/scripts/puppet-stack-up.sh

stack-down: ## stop the puppetserver recorded in PS_STATE, by PID
	tests/scripts/puppet-stack-down.sh

puppetdb-up: ## start (or reuse) the loopback PuppetDB + PostgreSQL in PDB_STATE (after stack-up)
	tests/scripts/puppetdb-up.sh

puppetdb-down: ## stop the PuppetDB and PostgreSQL recorded in PDB_STATE, by PID
	tests/scripts/puppetdb-down.sh

clean: ## remove packaging output and the staged binaries (not cargo's target dir)
	rm -rf pkg $(TASK_STAGED) $(AARCH64_STAGED)
