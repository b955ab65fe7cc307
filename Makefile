# The two commands a newcomer types: `make demo` and `make test`.
# Both set up what they need and skip what is already there.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The stamp changes whenever the dependency list does, so a second run installs nothing.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
SOURCES := shared edge cloud models sim benchmarks tests

.PHONY: demo test test-unit lint typecheck setup mosquitto postgresql dcmtk orthanc chromium cloud-image models proto clean help fuzz mutation bench-check bench-baseline bench-one

help:
	@echo "make demo       set up and run the whole system end to end"
	@echo "make test       set up and run lint, type checks and the full test suite"
	@echo "make test-unit  only the fast tests (no broker, Ray or SUMO)"
	@echo "make models     build the models into ./registry if not built yet"
	@echo "make fuzz       fuzz each scan and payload parser for FUZZ_SECONDS (60) per engine"
	@echo "make mutation   mutation score of the safety cores (not a CI gate; about an hour on 2 cores)"
	@echo "make bench-check quick benches vs benchmarks/baselines/ (flags regressions; not in make test)"

setup: $(STAMP) mosquitto postgresql dcmtk orthanc chromium

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[edge,cloud,sim,dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

mosquitto:
	@$(call apt_install,mosquitto,mosquitto mosquitto-clients)

# The review desk's browser tests drive Debian's chromium through Playwright (no browser
# download: the test passes executable_path=/usr/bin/chromium).
chromium:
	@$(call apt_install,chromium,chromium)

# The cloud store's tests start their own PostgreSQL cluster (initdb/pg_ctl, loopback port).
postgresql:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; else $(call apt_install,initdb,postgresql); fi

# Build the cloud image and run its CLI inside it (needs a Docker daemon and a package index;
# without a registry the base is built from Debian's packages; not part of `make test`).
cloud-image:
	@$(call apt_install,debootstrap,debootstrap)
	deploy/docker/build-cloud-image.sh edgeward/cloud:dev

# dcmtk (storescu/echoscu play the fundus camera in the DICOM tests); dicom3tools' dciodvfy
# checks the Structured Reports where it is packaged. Probed by dcmdump: pynetdicom puts its own
# storescu on PATH when the virtualenv is activated.
dcmtk:
	@$(call apt_install,dcmdump,dcmtk dicom3tools)

# Orthanc, the PACS of the DICOM integration tests and the demo (run from a JSON config of the
# test's own, never as the system service), with its DICOMweb plugin where packaged.
orthanc:
	@$(call apt_install,Orthanc,orthanc orthanc-dicomweb)

# $(call apt_install,COMMAND,PACKAGES): install PACKAGES with apt-get where COMMAND is missing.
apt_install = if ! command -v $(1) >/dev/null 2>&1 && ! test -x /usr/sbin/$(1); then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing $(2) with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1; then \
	    echo "installing $(2) with sudo apt-get"; \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	  else \
	    echo "$(1) is missing: install it (apt-get install $(2)) and run make again"; exit 1; \
	  fi; \
	fi

models: setup
	$(BIN)/edgeward models build --if-missing

demo: setup
	$(BIN)/edgeward demo

lint: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck: $(STAMP)
	$(BIN)/mypy $(SOURCES)

test: setup lint typecheck
	$(BIN)/python -m pytest

test-unit: setup
	$(BIN)/python -m pytest -m "not mqtt and not ray and not sumo and not e2e and not gpu"

mutation: $(STAMP)
	$(BIN)/edgeward bench mutation

# Quick benches against the committed baseline results: per-metric new/old ratios, exit 1 on a
# metric worse by more than BENCH_THRESHOLD. A regression check to read, not a CI timing gate:
# the host is shared, so read it on a quiet machine (the report warns when the load was high).
# `make bench-baseline` records a new baseline after an intended change.
BENCH_REGISTRY ?= .cache/bench-registry
BENCH_THRESHOLD ?= 0.25
# cloud and mqtt are judged on their same-run ratios alone: their quick runs are a few requests,
# whose milliseconds moved by a third between two runs on a quiet box; the quick mqtt run's
# ratios themselves moved by up to 25%
BENCH_MQTT_THRESHOLD ?= 0.5
BENCH_BASELINES := benchmarks/baselines
$(BENCH_REGISTRY)/fundus-triage:
	$(BIN)/edgeward models build --quick --if-missing --registry $(BENCH_REGISTRY)

# edge and cloud on the quick models, mqtt on a real mosquitto; each against its baseline, every
# suite run even when one regresses (the ratios within a run are what travel between machines)
BENCH_QUICK = $(BIN)/edgeward bench $(1) --quick $(if $(filter mqtt,$(1)),,--registry $(BENCH_REGISTRY)) \
	  --out .cache/bench-check/$(1)
bench-check: $(STAMP) $(BENCH_REGISTRY)/fundus-triage
	@status=0; \
	$(call BENCH_QUICK,edge) --compare $(BENCH_BASELINES)/edge-quick.json --threshold $(BENCH_THRESHOLD) || status=1; \
	$(call BENCH_QUICK,cloud) --compare $(BENCH_BASELINES)/cloud-quick.json --headline-only \
	  --threshold $(BENCH_THRESHOLD) || status=1; \
	$(call BENCH_QUICK,mqtt) --compare $(BENCH_BASELINES)/mqtt-quick.json --headline-only \
	  --threshold $(BENCH_MQTT_THRESHOLD) || status=1; \
	exit $$status

bench-baseline: $(STAMP) $(BENCH_REGISTRY)/fundus-triage
	@mkdir -p $(BENCH_BASELINES)
	for suite in edge cloud mqtt; do \
	  $(MAKE) --no-print-directory bench-one SUITE=$$suite && \
	  cp .cache/bench-check/$$suite/results.json $(BENCH_BASELINES)/$$suite-quick.json || exit 1; \
	done

bench-one: $(STAMP)
	$(call BENCH_QUICK,$(SUITE))

# Each parser (DICOM, PNG, JPEG, MQTT JSON, protobuf) for FUZZ_SECONDS with hypothesis, then with
# atheris (coverage-guided) where it installs; codec chatter goes to .cache/fuzz/<target>.log.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := dicom png jpeg mqtt proto
fuzz: $(STAMP)
	@$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[fuzz]' \
	  || echo "atheris does not install here: hypothesis only"
	@mkdir -p .cache/fuzz && : > .cache/fuzz/summary.jsonl
	@engines=hypothesis; $(BIN)/python -c "import atheris" 2>/dev/null && engines="hypothesis atheris"; \
	for engine in $$engines; do for t in $(FUZZ_TARGETS); do \
	  $(BIN)/python -m tests.fuzz.run $$t --seconds $(FUZZ_SECONDS) --engine $$engine \
	    2>.cache/fuzz/$$t-$$engine.log | tee -a .cache/fuzz/summary.jsonl; \
	  test "$${PIPESTATUS[0]}" = 0 || { tail -40 .cache/fuzz/$$t-$$engine.log; exit 1; }; \
	done; done
	@$(BIN)/python -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; \
	  print("fuzz: %d inputs in all, %d runs, no crash, peak RSS %.0f MB (cap +%d MB)" % ( \
	  sum(x["inputs"] for x in r), len(r), max(x["peak_rss_mb"] for x in r), r[0]["memory_cap_mb"]))' \
	  .cache/fuzz/summary.jsonl

proto: $(STAMP)
	$(BIN)/python -m shared.proto.generate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
