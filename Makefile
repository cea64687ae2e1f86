# hotspotguard — the two set-up commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Debian packages the applet needs (Qt's xcb platform, fonts, polkit's agent protocol) and those
# the tests drive for real (kernel rules, packets, a real dnsmasq, dockerd, NetworkManager and
# polkitd; a tray host and notification server under Xvfb).
DEB_RUN_PACKAGES  := iproute2 nftables iptables libnftables1 libgl1 libegl1 libxkbcommon-x11-0 \
                     libfontconfig1 libdbus-1-3 libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 \
                     libxcb-shape0 libxcb-randr0 libxcb-render-util0 libxcb-image0 fonts-dejavu-core
DEB_TEST_PACKAGES := $(DEB_RUN_PACKAGES) dnsmasq-base conntrack docker.io procps network-manager ufw \
                     dbus-daemon polkitd systemd util-linux xvfb xfce4-panel xfconf dunst trayer \
                     xdotool imagemagick desktop-file-utils debootstrap \
                     isc-dhcp-server
PYTEST_ARGS ?=

.PHONY: run test test-full test-plasma lint typecheck bench system-deps run-deps venv clean
.PHONY: firewalld-dep
.PHONY: install uninstall wheel test-packages srcinfo

# `make install [DESTDIR=…] [PREFIX=/usr] [VENV=1]`: the package for the system interpreter (or,
# with VENV=1, a root-owned venv at $(VENV_DIR) with the dependencies from PyPI: Debian 12,
# Ubuntu 22.04), the helper in $(PREFIX)/libexec/hotspotguard, and the list of system files in
# src/hotspotguard/helper/install.py (the same list `hotspotguard-helper install-system` uses).
PREFIX        ?= /usr/local
SYSCONFDIR    ?= /etc
DESTDIR       ?=
SYSTEM_PYTHON ?= /usr/bin/python3
VENV_DIR      ?= /opt/hotspotguard
WHEEL_DIR     := build/wheel
INSTALLER      = PYTHONPATH=src $(SYSTEM_PYTHON) -m hotspotguard.helper.install
INSTALL_ARGS   = --destdir "$(or $(DESTDIR),/)" --prefix "$(PREFIX)" --sysconfdir "$(SYSCONFDIR)" \
                 --python "$(SYSTEM_PYTHON)" $(if $(filter 1,$(VENV)),--venv "$(VENV_DIR)")
# Debian packages `make test-packages` needs on this machine (the Debian 13 tree's build tools
# are installed inside the tree).
DEB_PACKAGING_PACKAGES := debootstrap util-linux python3-pip python3-wheel python3-setuptools zsh groff

wheel:
	rm -rf $(WHEEL_DIR)
	$(SYSTEM_PYTHON) -m pip wheel --quiet --no-deps --no-build-isolation --no-index -w $(WHEEL_DIR) .

install: wheel
	$(INSTALLER) install $(INSTALL_ARGS) --wheel $(WHEEL_DIR)/hotspotguard-*.whl

uninstall:
	$(INSTALLER) uninstall $(INSTALL_ARGS)

# packaging/arch/.SRCINFO from the PKGBUILD (what `makepkg --printsrcinfo` writes).
srcinfo:
	$(SYSTEM_PYTHON) packaging/arch/srcinfo.py packaging/arch/PKGBUILD > packaging/arch/.SRCINFO

# The packages, for real: the Debian 13 package built, linted, installed, run and purged in a
# debootstrap tree (cached in /var/cache/hotspotguard-tests/trixie-build), the Arch PKGBUILD
# against `make install`.  Cold: about 5 minutes; cached: about 3½.
test-packages: venv
	$(call deb_install,$(DEB_PACKAGING_PACKAGES),the package tests will be skipped)
	$(BIN)/python -m tests.packaging.debian_tree
	HOTSPOTGUARD_PACKAGE_TESTS=1 $(BIN)/python -m pytest -s tests/packaging tests/test_clidocs.py $(PYTEST_ARGS)

$(BIN)/.installed: pyproject.toml setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

venv: $(BIN)/.installed

# Installs Debian packages ($(1)) when root on a Debian-like system; otherwise says what is missing.
define deb_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "note: these Debian packages are missing:$$missing ($(2))"; fi; \
	fi
endef

system-deps: firewalld-dep
	$(call deb_install,$(DEB_TEST_PACKAGES),the tests that need them will be skipped)

# firewalld, for its lab only (tests/firewalldlab.py runs its own, in a namespace): installed
# with every service start refused (a policy-rc.d for the duration, where there is none) and its
# unit disabled after, so the machine's own firewall never changes, now or at the next boot.
firewalld-dep:
	@if ! dpkg-query -W -f='$${Status}' firewalld 2>/dev/null | grep -q "ok installed"; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages: firewalld (never started here)"; guard=; \
	    if [ ! -e /usr/sbin/policy-rc.d ]; then \
	      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && guard=1; \
	    fi; \
	    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
	      --no-install-recommends firewalld >/dev/null; rc=$$?; \
	    if [ -n "$$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
	    systemctl --no-reload disable firewalld.service >/dev/null 2>&1 || true; \
	    exit $$rc; \
	  else echo "note: firewalld is missing (its tests will be skipped)"; fi; \
	fi

run-deps:
	$(call deb_install,$(DEB_RUN_PACKAGES),the applet may not start)

# Without a display: `status` for this machine. Its exit code 1 (a hotspot is blocked) or 2 (it
# could not tell, e.g. NetworkManager is not running: said on stderr) is an answer, not a failure.
run: venv run-deps
	@if [ -n "$$DISPLAY" ] || [ -n "$$WAYLAND_DISPLAY" ]; then \
	  exec $(BIN)/hotspotguard-tray --show; \
	else \
	  $(BIN)/hotspotguard status; rc=$$?; \
	  [ $$rc -le 2 ] || exit $$rc; \
	fi

test: venv system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The full differential run (300+ random rulesets against the kernel).
test-full: venv system-deps
	HOTSPOTGUARD_DIFF_EXAMPLES=300 $(BIN)/python -m pytest tests/kernel $(PYTEST_ARGS)
	HOTSPOTGUARD_INCREMENTAL_STEPS=400 $(BIN)/python -m pytest tests/system/test_incremental.py $(PYTEST_ARGS)

# The applet in a real Plasma 6 session (kwin_x11, kded6, plasmashell under Xvfb) from a Debian 13
# tree kept in $(PLASMA_TREE): built on the first run (debootstrap + packages from the apt mirror,
# ≈ 3 min, 1.8 GB), then ≈ 1 min a run. Root. See tests/plasma/plasma_lab.py.
PLASMA_TREE ?= /var/cache/hotspotguard-tests/trixie-plasma
test-plasma: venv system-deps
	R=$(PLASMA_TREE) tests/plasma/plasma6-lab.sh ensure
	HOTSPOTGUARD_PLASMA_LAB=1 HOTSPOTGUARD_PLASMA_TREE=$(PLASMA_TREE) \
	  $(BIN)/python -m pytest tests/plasma $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: venv
	$(BIN)/mypy --strict src/hotspotguard

# Figures, not assertions: the engine on 1k-100k rules, the watcher (latency, bursts, idle),
# the helper, the applet (chains dialog, tray start-up, memory, idle).
bench: venv system-deps
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_hostile.py
	$(BIN)/python benchmarks/bench_watch.py --churn-sizes 1000,10000,100000
	$(BIN)/python benchmarks/bench_helper.py
	$(BIN)/python benchmarks/bench_helper_state.py
	$(BIN)/python benchmarks/bench_ui.py
	$(BIN)/python benchmarks/bench_tray.py
	$(BIN)/python benchmarks/bench_fixes.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
