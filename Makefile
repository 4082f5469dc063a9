# Thin wrappers: every target is one call. Logic lives in tasks.py -> isobuild/.
VENV   ?= .venv
INVOKE := $(VENV)/bin/invoke
# .venv/bin first on PATH so tests that run `invoke` get the project's own install
PYTEST := PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/python -m pytest

.PHONY: help setup all render validate rpms iso usb runbook release test bench

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

setup:  ## install system packages (apt) and the Python venv
	./scripts/setup.sh

all:  ## run every stage on cluster.yaml
	$(INVOKE) all

render:  ## render kickstarts and per-node files into build/
	$(INVOKE) render

validate:  ## check rendered files with the real validators
	$(INVOKE) validate

rpms:  ## build the RPMs (mock, or rpmbuild fallback)
	$(INVOKE) rpms

iso:  ## build the install DVD (or the add-on disc without a base)
	$(INVOKE) iso

usb:  ## build the USB stick image (needs the base DVD: invoke.yaml isobuild.base_iso)
	$(INVOKE) usb

runbook:  ## write the per-cluster runbook into build/runbook
	$(INVOKE) runbook

release:  ## collect build/release/<cluster>-<version> with SHA256SUMS and manifest
	$(INVOKE) release

test:  ## run the whole test suite
	$(PYTEST)

bench:  ## ISO remaster benchmark
	$(INVOKE) bench-iso
