# Tumbler's task runner. `make run` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
E2E := e2e
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: help deps deps-rust build release crds fmt lint chart-readme unit check-crds e2e test cluster-up cluster-down run bench clean

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

deps: ## Install what the local control plane needs (Debian packages, Go check) and the Rust components.
	@scripts/deps.sh

deps-rust: ## Install only what building and unit tests need (C toolchain, rustfmt, clippy); no Go.
	@scripts/deps.sh rust

build: deps-rust ## Build the tumbler binary (debug).
	$(CARGO) build --locked

release: deps-rust ## Build the release binary (target/release/tumbler).
	$(CARGO) build --locked --release

crds: ## Regenerate crds/ (and its copies in the chart and config/crd) from the Rust types.
	$(CARGO) run --quiet --locked -- crds --out crds
	$(CARGO) run --quiet --locked -- crds --out charts/tumbler/crds
	$(CARGO) run --quiet --locked -- crds --out config/crd/bases

chart-readme: ## Regenerate the values table of charts/tumbler/README.md from values.yaml.
	python3 hack/chart-readme.py

fmt: ## Format the code.
	$(CARGO) fmt

lint: deps-rust ## rustfmt check, clippy with warnings as errors, the chart README is current.
	$(CARGO) fmt --check
	python3 hack/chart-readme.py --check
	$(CARGO) clippy --locked --all-targets --features e2e -- -D warnings

unit: deps-rust ## Unit tests and the API tests (serde, schemas, CRD drift); no cluster needed.
	$(CARGO) test --locked

check-crds: ## Fail when crds/ differs from what `tumbler crds` generates.
	$(CARGO) test --locked --test api committed_crds_match_the_generated_ones

e2e: deps build ## End-to-end suite against the local control plane (built from source, cached; its real node runs an image of the debug binary, so CI builds no release binary).
	TUMBLER_BINARY=$${TUMBLER_BINARY:-$(TARGET_DIR)/debug/tumbler} $(E2E)/with-cluster.sh $(E2E)/run.sh

test: lint unit e2e ## Everything CI runs: lint, unit tests, CRD drift, end-to-end suite.

cluster-up: deps release ## Start etcd, kube-apiserver, Flux, a git server on loopback and a real node with the Tumbler image.
	$(E2E)/cluster.sh up

cluster-down: ## Stop everything cluster-up started.
	$(E2E)/cluster.sh down

bench: deps ## Speed and memory measurements (the targets of the summary table), against the local control plane.
	$(CARGO) build --locked --release --features e2e --benches --bins
	$(E2E)/with-cluster.sh $(CARGO) bench --locked --features e2e --bench tumbler

run: deps ## The walkthrough: local control plane, a gitops repo, samples, the controller, Ready.
	hack/run.sh

clean: cluster-down ## Remove build output and the local control plane state.
	$(CARGO) clean
	rm -rf .tumbler-dev
