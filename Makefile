# The two commands a newcomer needs on a fresh Debian 12 machine:
#   make run    install what is missing, build a release binary, run it on config/hookrelay.yaml
#   make test   install what is missing, build everything, run every test through ctest
JOBS ?= $(shell nproc)
RELEASE_DIR ?= build/release
DEV_DIR ?= build/dev
WERROR ?= OFF
CONFIG ?= config/hookrelay.yaml

# Development values for the example config's secret references; set your own to override.
export GITHUB_WEBHOOK_SECRET ?= dev-github-secret
export GITLAB_WEBHOOK_TOKEN ?= dev-gitlab-token
export JENKINS_API_TOKEN ?= dev-jenkins-token
export HOOKRELAY_ADMIN_TOKEN ?= dev-admin-token

.PHONY: all deps release build run test bench install clean

all: build

deps:
	@scripts/install-deps.sh

release: deps
	cmake -S . -B $(RELEASE_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  -DHOOKRELAY_BUILD_TESTS=OFF -DHOOKRELAY_BUILD_BENCH=ON
	cmake --build $(RELEASE_DIR) -j $(JOBS) --target hookrelay

build: deps
	cmake -S . -B $(DEV_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHOOKRELAY_WERROR=$(WERROR)
	cmake --build $(DEV_DIR) -j $(JOBS)

run: release
	@mkdir -p var
	$(RELEASE_DIR)/hookrelay run --config $(CONFIG)

test: build
	ctest --test-dir $(DEV_DIR) --output-on-failure -j $(JOBS)

bench: deps
	cmake -S . -B $(RELEASE_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DHOOKRELAY_BUILD_TESTS=OFF
	cmake --build $(RELEASE_DIR) -j $(JOBS) --target ingest_bench
	$(RELEASE_DIR)/bench/ingest_bench

install: release
	cmake --install $(RELEASE_DIR)

clean:
	rm -rf build
