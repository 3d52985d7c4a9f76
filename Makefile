# gcs: two commands on a fresh Debian machine.
#   make run    installs what is missing, builds, starts gcs on scripts/chat.lua
#   make test   installs what is missing, builds with ASan+UBSan, runs every test (ctest)
# Also: make (build), make bench, make clean.

BUILD      ?= build
TEST_BUILD ?= build-test
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
PORT       ?= 7681

# Build and run: the libraries and Lua. Tests add busted, cmocka, Node for
# the 'ws' client and Chromium for the browser test.
DEB_PACKAGES  := cmake make gcc pkg-config libuv1-dev liblua5.4-dev lua5.4 \
                 libwslay-dev libhttp-parser-dev libssl-dev libjansson-dev
TEST_PACKAGES := lua-busted libcmocka-dev chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Installs the Debian packages of $(1) that are missing, saying which.
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$(2)" ] && { ! command -v node >/dev/null || ! command -v npm >/dev/null; }; then missing="$$missing nodejs npm"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing missing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
endef

.PHONY: all build run run-echo test deps test-deps npm-deps bench clean

all: build

deps:
	$(call apt_install,$(DEB_PACKAGES),)

test-deps: deps
	$(call apt_install,$(TEST_PACKAGES),node)

# The end-to-end tests' WebSocket client (npm 'ws'), pinned by package-lock.json.
npm-deps: test-deps
	@if [ ! -d tests/e2e/node_modules/ws ]; then \
	  echo "make: installing the test client (npm ci in tests/e2e)"; \
	  npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGC_BUILD_TESTS=OFF >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/gcs scripts/chat.lua -p $(PORT)

run-echo: build
	./$(BUILD)/gcs -C examples/echo/echo.json

test: test-deps npm-deps
	cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DGC_SANITIZE=ON -DGC_BUILD_TESTS=ON >/dev/null
	cmake --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS)

# Side-by-side throughput, latency, memory and broadcast figures (bench/RESULTS.md).
bench: build
	QUICK=$(QUICK) BUILD=$(BUILD) bench/run.sh

clean:
	rm -rf $(BUILD) $(TEST_BUILD)
