# hotspotguard — the two set-up commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Debian packages the tests drive for real (kernel rules, packets, a real dnsmasq and dockerd).
DEB_TEST_PACKAGES := nftables iptables libnftables1 iproute2 dnsmasq-base conntrack docker.io procps \
                     network-manager dbus-daemon
PYTEST_ARGS ?=

.PHONY: run test test-full lint typecheck bench system-deps venv clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

venv: $(BIN)/.installed

# Installs the Debian packages the tests use, when root on a Debian-like system; otherwise says what is missing.
system-deps:
	@missing=""; for p in $(DEB_TEST_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "note: the kernel tests need these Debian packages:$$missing (they will be skipped)"; fi; \
	fi

# Without a display: `status` for this machine. Its exit code 1 (a hotspot is blocked) or 2 (it
# could not tell, e.g. NetworkManager is not running: said on stderr) is an answer, not a failure.
run: venv
	@if { [ -n "$$DISPLAY" ] || [ -n "$$WAYLAND_DISPLAY" ]; } && $(BIN)/hotspotguard applet --help >/dev/null 2>&1; then \
	  exec $(BIN)/hotspotguard applet; \
	else \
	  $(BIN)/hotspotguard status; rc=$$?; \
	  [ $$rc -le 2 ] || exit $$rc; \
	fi

test: venv system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The full differential run (300+ random rulesets against the kernel).
test-full: venv system-deps
	HOTSPOTGUARD_DIFF_EXAMPLES=300 $(BIN)/python -m pytest tests/kernel $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: venv
	$(BIN)/mypy --strict src/hotspotguard/ruleset src/hotspotguard/verdict src/hotspotguard/fixes

# Figures, not assertions: the engine on 1k-100k rules, the watcher (latency, bursts, idle), the helper.
bench: venv system-deps
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_watch.py
	$(BIN)/python benchmarks/bench_helper.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
