# edgectl developer entry point: `make help`. CI runs `make check` (see .ci/run).
# Only Python 3.11 and a Rust toolchain are assumed; uv is bootstrapped into .tools/.

PYTHON ?= python3.11
UV_VERSION := 0.13.9
UV := .tools/bin/uv
# `uv run` must not re-sync: the extension is installed by maturin, not by uv sync.
export UV_NO_SYNC := 1
export UV_PYTHON := $(PYTHON)
RUN := $(UV) run --no-sync
# the locked maturin of .venv, named by path: never one found on PATH (a pyenv shim, a pipx copy)
MATURIN := $(CURDIR)/.venv/bin/maturin
# maturin's `--uv` and every recipe look tools up on PATH: the bootstrapped uv comes first.
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.DEFAULT_GOAL := help
.PHONY: help setup install proto fleet-demo fleet-test-24 fleet-bench build build-dev run run-full demo lint format test test-rust test-py hil bench check clean pi-wheel test-aarch64

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

.venv/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --all-groups
	touch $@

install: .venv/.synced  ## create .venv with every dependency group (uv.lock, frozen)

# the Sparkplug B payload classes, compiled from the shipped official .proto (edgectl.fleet)
PROTO_OUT := python/edgectl/fleet/sparkplug_b_pb2.py
$(PROTO_OUT): python/edgectl/fleet/proto/sparkplug_b.proto .venv/.synced
	$(RUN) python -m grpc_tools.protoc --proto_path=python/edgectl/fleet/proto \
	    --python_out=python/edgectl/fleet --plugin=protoc-gen-mypy=.venv/bin/protoc-gen-mypy \
	    --mypy_out=python/edgectl/fleet $<

proto: $(PROTO_OUT)  ## compile the Sparkplug B protobuf schema (part of build)

build: install proto  ## build the optimised extension into .venv (what tests and the main job use)
	$(RUN) $(MATURIN) develop --uv --release

build-dev: install proto  ## quick debug build of the extension into .venv
	$(RUN) $(MATURIN) develop --uv

run: build  ## set up, then run the main job (a whole E. coli culture, ~10 h in about a minute) on the simulated plant
	$(RUN) edgectl run examples/ecoli-fedbatch-2L-seed.toml --speed 5000 --until-end

run-full: build  ## the E. coli example's whole 25 h culture on the simulated plant (about 3 min)
	$(RUN) edgectl run examples/ecoli-fedbatch-2L.toml --speed 5000 --until-end

format: install  ## rewrite Python and Rust sources in the project style
	$(RUN) ruff format python tests hil_tests examples
	$(RUN) ruff check --fix python tests hil_tests examples
	cargo fmt --all

lint: build  ## ruff, mypy + stubtest, cargo fmt --check, clippy -D warnings
	$(RUN) ruff format --check python tests hil_tests examples
	$(RUN) ruff check python tests hil_tests examples
	$(RUN) mypy
	$(RUN) python -m mypy.stubtest edgectl._core
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

test-rust:  ## Rust unit, property and golden-vector tests of the core
	cargo test -p edgectl-core --locked

test-py: build  ## Python tests of the layer and the bindings (tests/)
	$(RUN) pytest tests

hil: build  ## hardware-in-the-loop scenarios (emulated devices unless EDGECTL_HIL_* names a rig)
	$(RUN) pytest hil_tests -c pyproject.toml --rootdir . -p no:cacheprovider

test: test-rust test-py hil  ## every test: Rust, Python, HIL

check: lint test  ## everything CI runs: lint and every test

bench: build  ## benchmarks: pytest-benchmark ratios against the peers, then criterion
	$(RUN) pytest tests/benchmarks --benchmark-enable --benchmark-only -p no:randomly
	cargo bench -p edgectl-core

fleet-demo: build  ## eight simulated reactors, mosquitto, the collector, PostgreSQL; fleet status
	$(RUN) python scripts/fleet_demo.py

fleet-test-24: build  ## the fleet outage test with 24 reactors (marked long, not part of make check)
	$(RUN) pytest tests/test_fleet_outages.py -m long -rP

fleet-bench: build  ## fleet figures: collector ingest, 24 h backlog replay, scan lateness
	$(RUN) python scripts/fleet_bench.py

pi-wheel: install  ## the aarch64 abi3 wheel for a Raspberry Pi (cross-built from Debian packages)
	scripts/pi-wheel.sh target/wheels-aarch64

test-aarch64: install  ## Rust core tests and the wheel's Python tests as aarch64, under qemu
	scripts/test-aarch64.sh

clean:  ## remove build products and environments
	rm -rf target .venv .tools
