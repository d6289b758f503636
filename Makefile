# nodekit: `make demo` and `make test` are all a fresh machine needs.
# Every set-up step is idempotent and caches outside the clone
# ($(NODEKIT_CACHE), pip's and Go's own caches), so repeated runs are quick.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
NODEKIT_CACHE ?= $(HOME)/.cache/nodekit
export NODEKIT_CACHE
TC := nodekit/toolchain
# Time a step and say so: "setup: <step> <seconds>s".
timed = TIMEFORMAT="setup: $(1) %Rs"; time

.PHONY: help setup deps host docker image pulumi actionlint sarif backend demo bench test stress lint unit integration golden clean

help:
	@echo "make demo   deploy and verify the example node on the local target"
	@echo "make test   every test (unit, golden, integration) and lint"
	@echo "make setup  install the toolchain only (python deps, docker, node image, pulumi)"
	@echo "make backend a local PostgreSQL for shared state (prints NODEKIT_BACKEND=...)"
	@echo "make golden regenerate the golden files of the render tests"
	@echo "make bench  run the benchmarks (render fleet, deploy node)"
	@echo "make stress the fuzzer (10,000 cases) and the property tests at full size"

setup: deps host docker image pulumi actionlint sarif

deps: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	@$(call timed,deps) { test -x $(PY) || python3 -m venv $(VENV); \
	  $(PY) -m pip install -q -e '.[dev]'; }
	@touch $@

host:
	@$(call timed,host) bash $(TC)/setup-host.sh

docker: host
	@$(call timed,docker) bash $(TC)/setup-docker.sh

image: docker host
	@$(call timed,image) bash $(TC)/build-node-image.sh >/dev/null
	@$(call timed,baseline) bash $(TC)/build-baseline.sh

pulumi:
	@$(call timed,pulumi) bash $(TC)/build-pulumi.sh

ACTIONLINT := $(NODEKIT_CACHE)/actionlint/v1.7.12/actionlint
actionlint: host
	@$(call timed,actionlint) bash $(TC)/build-actionlint.sh >/dev/null

# The SARIF 2.1.0 schema the policy tests validate against (from npm).
sarif: host
	@$(call timed,sarif) bash $(TC)/fetch-sarif-schema.sh >/dev/null

# A PostgreSQL cluster for nodekit on loopback (Debian's packages); its last
# line is NODEKIT_BACKEND=postgres://... for it. The tests use it too.
backend:
	@bash $(TC)/setup-backend.sh

DEMO ?= blueprints/sites/lyon-additive-01.yaml

demo: setup
	$(BIN)/nodekit doctor
	$(BIN)/nodekit validate blueprints/
	$(BIN)/nodekit deploy $(DEMO) --yes
	@echo "demo: node deployed and verified; the deploy printed how to query its telemetry"
	@echo "      docker exec nk-$(basename $(notdir $(DEMO)))-hist-01 runuser -u postgres -- \\"
	@echo "        psql -d historian -c 'SELECT * FROM telemetry ORDER BY time DESC LIMIT 10'"
	@echo "      see the machines: .venv/bin/nodekit equipment $(DEMO)"
	@echo "      try: .venv/bin/nodekit drift $(DEMO)"
	@echo "      remove it with: .venv/bin/nodekit destroy $(DEMO) --yes"

bench: setup backend
	$(BIN)/python benchmarks/render_fleet.py
	$(BIN)/python benchmarks/deploy_node.py
	$(BIN)/python benchmarks/backend_overhead.py
	$(BIN)/python benchmarks/gitops.py
	$(BIN)/python benchmarks/parallel_nodes.py

lint: deps actionlint
	$(BIN)/ruff check nodekit tests benchmarks inventories
	$(BIN)/ruff format --check nodekit tests benchmarks inventories
	$(BIN)/mypy
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint --offline -q playbooks/
	@command -v shellcheck >/dev/null || { echo "lint: shellcheck is missing (make host installs it)" >&2; exit 1; }
	$(ACTIONLINT) -shellcheck=shellcheck -config-file examples/gitops/actionlint.yaml examples/gitops/github-actions.yml

# Unit and golden tests use both cores (xdist). Integration tests too, a test
# file per worker at a time: each file's nodes, subnets and names are its own,
# and files that share a machine-wide resource run as one unit
# (tests/conftest.py). INTEGRATION_XDIST= runs them one at a time.
INTEGRATION_XDIST ?= -n 2 --dist loadscope --no-loadscope-reorder
unit: deps
	$(BIN)/pytest -m "not integration" -n 2

integration: setup
	$(BIN)/pytest -m integration $(INTEGRATION_XDIST)

test: setup backend lint
	@TIMEFORMAT="test: unit %Rs"; time $(BIN)/pytest -m "not integration" -n 2
	@TIMEFORMAT="test: integration %Rs"; time $(BIN)/pytest -m integration $(INTEGRATION_XDIST)

# The fuzzer at full size: 10,000 mutations of the shipped blueprints (junk values,
# broken YAML, alias bombs, nesting, encodings, huge files), then the render
# property over 1,200 generated blueprints (make test runs a few hundred of each;
# about 0.6 s a blueprint: some 12 minutes).
stress: deps
	NODEKIT_FUZZ_EXAMPLES=2500 $(BIN)/pytest -q -n 2 tests/unit/blueprint/test_fuzz_shipped.py
	NODEKIT_PROPERTY_EXAMPLES=1200 $(BIN)/pytest -q tests/unit/render/test_render_property.py

golden: deps
	NODEKIT_REGEN_GOLDEN=1 $(BIN)/pytest -q tests/unit/render/test_golden.py
	@git status --short tests/golden

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
