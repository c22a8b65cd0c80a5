# pmdci6: BILLmanager 6 processing module for dedicated servers in DCImanager 6.
# Needs only GNU make and python3 >= 3.11 on PATH; everything else goes into .venv.

PYTHON ?= python3
VENV ?= .venv
VENV_STAMP := $(VENV)/.pmdci6-dev.stamp
PYTEST_ARGS ?=
# pytest-xdist workers, one more than the cores this process may use: part of every e2e test
# is spent waiting (on the binary's processes, on the simulator's answers, on back-off), and
# the extra worker fills it (2 cores, stop 17: 2 workers 177 s, 3 workers 165 s; stop 16:
# 4 workers 194 s). They take tests one at a time and steal from each other when idle
# (worksteal): no file bounds the run. What tests share across workers (make install's
# virtualenv, the wheel) is made once per run (tests/conftest.py made_once).
# NOTE(stop16): not loadgroup: with pytest 9.2, xdist 3.8's loadgroup groups nothing (it
# sets Node._nodeid, which pytest no longer reads), so grouped tests split across workers.
XDIST_WORKERS = $(shell $(PYTHON) -c "import os; n = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count(); print((n or 1) + 1)")
PYTEST_XDIST ?= -n $(XDIST_WORKERS) --dist worksteal

# `make install DESTDIR=/tmp/stage PREFIX=/usr/local/mgr5`: PREFIX is BILLmanager's root on the
# target host, DESTDIR an optional staging directory (for packages and tests).
PREFIX ?= /usr/local/mgr5
DESTDIR ?=
CRONDIR ?= /etc/cron.d
PIP_INSTALL_ARGS ?=
MODULE := pmdci6
APP_VENV := $(PREFIX)/lib/$(MODULE)/venv
STAGED_VENV := $(DESTDIR)$(APP_VENV)

.DEFAULT_GOAL := help
.PHONY: help venv test lint demo bench install install-venv install-files check-python clean distclean

help:
	@echo "make venv       create $(VENV) with the package (editable) and its dev tools"
	@echo "make test       run the whole test suite"
	@echo "make lint       ruff check and mypy (strict)"
	@echo "make demo       run a whole order lifecycle on the sandbox"
	@echo "make bench      run every bench/bench_*.py and print its figures"
	@echo "make install    lay the module out under \$$(DESTDIR)\$$(PREFIX) (default $(PREFIX))"
	@echo "make clean      remove build outputs and tool caches (distclean: also $(VENV))"

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "pmdci6 needs Python >= 3.11; $(PYTHON) is " + sys.version.split()[0])'

venv: $(VENV_STAMP)

# Rebuilt when pyproject.toml changes (new dependency or entry point).
$(VENV_STAMP): pyproject.toml sandbox/pyproject.toml | check-python
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install $(PIP_INSTALL_ARGS) -e '.[dev]' -e ./sandbox
	touch $@

# The suite starts the binary and the stand-in mgrctl thousands of times: their modules are
# compiled once first (a billing host runs pip-compiled bytecode too), also where
# PYTHONDONTWRITEBYTECODE would make every process compile them again.
test: $(VENV_STAMP)
	$(VENV)/bin/python -m compileall -q dci6_processing sandbox/pmdci6_sandbox
	$(VENV)/bin/python -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy dci6_processing sandbox/pmdci6_sandbox

demo: $(VENV_STAMP)
	$(VENV)/bin/pmdci6-sandbox demo

# Every script runs even when one fails, so one broken bench hides no other figures.
bench: $(VENV_STAMP)
	@found=0; failed=""; \
	for script in bench/bench_*.py; do \
		[ -f "$$script" ] || continue; \
		found=1; \
		echo "== $$script"; \
		$(VENV)/bin/python "$$script" || failed="$$failed $$script"; \
	done; \
	[ "$$found" = 1 ] || { echo "no bench/bench_*.py scripts" >&2; exit 1; }; \
	[ -z "$$failed" ] || { echo "failed:$$failed" >&2; exit 1; }

install: install-venv install-files
	@echo
	@echo "pmdci6 installed under $(DESTDIR)$(PREFIX); cron entry $(DESTDIR)$(CRONDIR)/$(MODULE)."
	@echo "Now let BILLmanager load the new module:"
	@echo "    $(PREFIX)/sbin/mgrctl -m billmgr -R"

# The virtualenv is built beside its final place and swapped in whole, so BILLmanager never
# runs a half-installed module. Paths baked into it are rewritten from the staging path to the
# final one; the launcher names the interpreter itself, so the staged tree runs as well.
install-venv: check-python
	rm -rf '$(STAGED_VENV).new'
	mkdir -p '$(dir $(STAGED_VENV))'
	$(PYTHON) -m venv '$(STAGED_VENV).new'
	rm -rf build  # setuptools would reuse it and ship modules deleted since the last build
	'$(STAGED_VENV).new/bin/python' -m pip install --quiet $(PIP_INSTALL_ARGS) .
	grep -rlI --null -e '$(STAGED_VENV).new' '$(STAGED_VENV).new/bin' '$(STAGED_VENV).new/pyvenv.cfg' \
		| xargs -0 -r sed -i -e 's|$(STAGED_VENV).new|$(APP_VENV)|g'
	rm -rf '$(STAGED_VENV).old'
	if [ -d '$(STAGED_VENV)' ]; then mv '$(STAGED_VENV)' '$(STAGED_VENV).old'; fi
	mv '$(STAGED_VENV).new' '$(STAGED_VENV)'
	rm -rf '$(STAGED_VENV).old'

# Everything but the virtualenv: launcher, descriptor, cron entry (paths follow PREFIX).
install-files:
	install -d -m 0755 '$(DESTDIR)$(PREFIX)/processing' '$(DESTDIR)$(PREFIX)/etc/xml' '$(DESTDIR)$(CRONDIR)'
	install -m 0755 etc/launcher.pmdci6 '$(DESTDIR)$(PREFIX)/processing/$(MODULE)'
	install -m 0644 xml/billmgr_mod_$(MODULE).xml '$(DESTDIR)$(PREFIX)/etc/xml/billmgr_mod_$(MODULE).xml'
	# the example is ours to replace; the admin's routes.toml beside it is never touched
	install -d -m 0755 '$(DESTDIR)$(PREFIX)/etc/$(MODULE)'
	install -m 0644 etc/routes.toml.example '$(DESTDIR)$(PREFIX)/etc/$(MODULE)/routes.toml.example'
	sed -e 's|/usr/local/mgr5|$(PREFIX)|g' etc/cron.pmdci6 > '$(DESTDIR)$(CRONDIR)/$(MODULE).tmp'
	chmod 0644 '$(DESTDIR)$(CRONDIR)/$(MODULE).tmp'
	mv '$(DESTDIR)$(CRONDIR)/$(MODULE).tmp' '$(DESTDIR)$(CRONDIR)/$(MODULE)'

clean:
	rm -rf build dist *.egg-info sandbox/build sandbox/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
