# rollcall — common tasks. `make run` and `make test` are all a fresh clone needs.

CARGO ?= cargo
NEXTEST := $(shell command -v cargo-nextest 2>/dev/null)

.PHONY: run test lint fmt services build release bench clean

## Build and start rollcall on its embedded defaults (SQLite, embedded queue, .eml outbox).
run:
	$(CARGO) run -p rollcall -- serve

# The schema-driven fuzzer the API tests run (PyPI), in a virtualenv of the workspace.
SCHEMATHESIS_VERSION := 4.32.5
PYTHON ?= python3

## Every test: unit, integration and end-to-end (needs PostgreSQL and RabbitMQ; see README).
test: .venv/bin/st
ifdef NEXTEST
	$(CARGO) nextest run --workspace --no-fail-fast --features rollcall/failpoints
else
	$(CARGO) test --workspace --no-fail-fast --features rollcall/failpoints
endif

.venv/bin/st:
	$(PYTHON) -m venv .venv
	.venv/bin/pip install --quiet --disable-pip-version-check schemathesis==$(SCHEMATHESIS_VERSION)

## Formatting and lints, as CI runs them.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --features rollcall/failpoints -- -D warnings

fmt:
	$(CARGO) fmt --all

## Validate deploy/ offline (Compose, Kubernetes, Prometheus rules, Dockerfile); tools in .venv-deploy/.
.PHONY: deploy-check
deploy-check:
	./deploy/validate

## Start PostgreSQL and RabbitMQ on this machine if they are not running.
services:
	./.ci/services

build:
	$(CARGO) build --workspace

## The benchmark (a few minutes; needs PostgreSQL and RabbitMQ): ceilings, then the embedded
## and the distributed deployment. Writes bench/results/latest.json and prints a table.
## One part alone: target/release/rollcall-bench run --scenario ceilings|embedded|distributed
bench:
	$(CARGO) build --release -p rollcall -p rollcall-bench
	./target/release/rollcall-bench run $(BENCH_ARGS)

release:
	$(CARGO) build --release -p rollcall

clean:
	$(CARGO) clean
	rm -rf rollcall-data
