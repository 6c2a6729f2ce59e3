# The two commands a newcomer needs on a fresh Debian 12 machine:
#   make run    install what is missing, build the daemon, run it on config/hookrelay.yaml
#   make test   install what is missing, build everything, run every test through ctest
# Both build in the same tree (build/dev), so whichever runs second reuses the first one's work.
JOBS ?= $(shell nproc)
DEV_DIR ?= build/dev
RELEASE_DIR ?= build/release
DEB_DIR ?= build/deb
WERROR ?= OFF
# 1: `make release` and `make deb` are profile-guided builds (scripts/pgo-build.sh); 0: plain.
PGO ?= 1
CONFIG ?= config/hookrelay.yaml

.PHONY: all deps configure release build run test bench deb install clean

# release_configure DIR,CMAKE_ARGS: DIR configured as an optimized build; with PGO=1 the daemon is
# also built there, profile-guided (scripts/pgo-build.sh), before the caller builds the rest.
define release_configure
	$(if $(filter 0,$(PGO)),cmake -S . -B $(1) -G Ninja -DCMAKE_BUILD_TYPE=Release $(2) -DHOOKRELAY_PGO=,JOBS=$(JOBS) scripts/pgo-build.sh $(1) $(2))
endef

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	cmake -S . -B $(DEV_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHOOKRELAY_WERROR=$(WERROR)

build: configure
	cmake --build $(DEV_DIR) -j $(JOBS)

# Only the daemon; the development secrets come from config/dev.env unless already set.
run: configure
	cmake --build $(DEV_DIR) -j $(JOBS) --target hookrelay
	@mkdir -p var
	@set -a && . ./config/dev.env && set +a && exec $(DEV_DIR)/hookrelay run --config $(CONFIG)

test: build
	ctest --test-dir $(DEV_DIR) --output-on-failure -j $(JOBS)

# Optimized build (-O3, no tests) for benchmarks and `make install`.
release: deps
	$(call release_configure,$(RELEASE_DIR),-DHOOKRELAY_BUILD_TESTS=OFF -DHOOKRELAY_BUILD_BENCH=ON)
	cmake --build $(RELEASE_DIR) -j $(JOBS) --target hookrelay hookrelay_docs

bench: release
	cmake --build $(RELEASE_DIR) -j $(JOBS) --target ingest_bench
	$(RELEASE_DIR)/bench/ingest_bench

# build/deb/hookrelay_<version>_amd64.deb: installs to /usr, the config to /etc/hookrelay.
deb:
	@scripts/install-deps.sh --deb
	$(call release_configure,$(DEB_DIR),-DCMAKE_INSTALL_PREFIX=/usr -DHOOKRELAY_BUILD_TESTS=OFF \
	  -DHOOKRELAY_BUILD_BENCH=OFF)
	cmake --build $(DEB_DIR) -j $(JOBS)
	cd $(DEB_DIR) && cpack -G DEB
	@ls $(DEB_DIR)/hookrelay_*.deb

install: release
	cmake --install $(RELEASE_DIR)

clean:
	rm -rf build
