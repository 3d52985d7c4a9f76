# gcs: two commands on a fresh Debian machine.
#   make run    installs what is missing, builds, starts gcs on scripts/chat.lua
#   make test   installs what is missing, builds with ASan+UBSan, runs every test (ctest)
# Also: make (build), make install (PREFIX, DESTDIR), make uninstall,
# make tsan (the tests under ThreadSanitizer), make bench, make clean.

# No "Entering directory" lines, from this make or cmake's.
MAKEFLAGS += --no-print-directory

BUILD      ?= build
TEST_BUILD ?= build-test
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
PORT       ?= 7681
PREFIX     ?= /usr/local
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build run run-echo test tsan deps test-deps npm-deps install uninstall \
        bench fuzz soak clean

all: build

# What is missing is found with pkg-config (a header, a command) and, on
# Debian or Ubuntu, installed with apt-get; elsewhere tools/deps.sh names
# it and stops. Build and run: the libraries; tests add Lua 5.4, busted,
# cmocka, Node for the 'ws' client and Chromium for the browser test.
deps:
	@tools/deps.sh build

test-deps:
	@tools/deps.sh test

# The end-to-end tests' WebSocket client (npm 'ws'), pinned by package-lock.json.
npm-deps: test-deps
	@if [ ! -d tests/e2e/node_modules/ws ]; then \
	  echo "make: installing the test client (npm ci in tests/e2e)"; \
	  npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGC_BUILD_TESTS=OFF \
	  -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# bin/gcs, lib/gcs/libgc_lua.so, include/game-carrier/, share/pkgconfig/
# game-carrier-server.pc, gc.testing in Lua 5.4's C module folder, share/gcs/
# (scripts, gcs.service, gcs.json). `make && sudo make install`.
install: build
	DESTDIR='$(DESTDIR)' cmake --install $(BUILD) --prefix $(PREFIX)

# Removes what the last install from $(BUILD) wrote (install_manifest.txt);
# give it the same DESTDIR.
uninstall:
	DESTDIR='$(DESTDIR)' cmake -DMANIFEST=$(BUILD)/install_manifest.txt -P packaging/uninstall.cmake

run: build
	./$(BUILD)/gcs scripts/chat.lua -p $(PORT)

run-echo: build
	./$(BUILD)/gcs -C examples/echo/echo.json

test: test-deps npm-deps
	cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DGC_SANITIZE=ON -DGC_BUILD_TESTS=ON >/dev/null
	cmake --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS)

# The tests under ThreadSanitizer: gcs has a second thread (the watcher of
# a second SIGTERM) and adapters may call the API from threads of their own.
# Left out: the Lua adapter's unit test and the busted suites, which run
# one thread and stop runaway Lua with a signal that ThreadSanitizer holds
# back from a spinning thread (the e2e tests skip their few such cases).
TSAN_BUILD ?= build-tsan
tsan: test-deps npm-deps
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DGC_TSAN=ON -DGC_BUILD_TESTS=ON >/dev/null
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	cd $(TSAN_BUILD) && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -j $(JOBS) \
	  -E '^(unit\.test_lua_adapter|busted\..*)$$'

# Side-by-side throughput, latency, memory and broadcast figures (bench/RESULTS.md).
bench: build
	QUICK=$(QUICK) BUILD=$(BUILD) bench/run.sh

# libFuzzer (clang) on the upgrade parser, a connection's frame input and the
# config loader: FUZZ_SECONDS each (default 60). New inputs go to
# build-fuzz/corpus/; crashes to build-fuzz/ (add them to tests/fuzz/corpus/
# to keep them as regression tests: ctest replays that corpus; a frames input
# also needs its expected close code in tests/fuzz/corpus/frames.expect).
# -max_len: inputs long enough for 8 KiB headers (431) and, for the frames
# target, for fragment and control-frame floods past the limits its config
# sets (libFuzzer's default grows inputs from short ones and stays far below).
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 16384
FUZZ_FRAMES_MAX_LEN ?= 131072
fuzz: test-deps
	@command -v clang >/dev/null || { echo "make: installing clang"; $(SUDO) apt-get install -y -qq clang; }
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGC_FUZZ=ON -DGC_BUILD_TESTS=ON >/dev/null
	cmake --build build-fuzz -j $(JOBS) --target fuzz_http_upgrade fuzz_frames fuzz_config
	@for t in http_upgrade frames config; do \
	  mkdir -p build-fuzz/corpus/$$t; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	  ml=$(FUZZ_MAX_LEN); [ $$t = frames ] && ml=$(FUZZ_FRAMES_MAX_LEN); \
	  (cd build-fuzz && GC_BUILD_DIR=$$PWD ./fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=$$ml \
	    -print_final_stats=1 corpus/$$t ../tests/fuzz/corpus/$$t > fuzz_$$t.log 2>&1); st=$$?; \
	  grep -E "^(stat::number_of_executed_units|stat::peak_rss|#[0-9]+ +DONE|SUMMARY|artifact)" build-fuzz/fuzz_$$t.log; \
	  [ $$st = 0 ] || { echo "fuzz_$$t failed: see build-fuzz/fuzz_$$t.log"; exit 1; }; \
	done

# Minutes of mixed, partly hostile traffic (not in CI): well-behaved clients
# must lose nothing and RSS must return near its baseline.
SOAK_SECONDS ?= 120
soak: build npm-deps
	GCS=$(BUILD)/gcs GC_BUILD_DIR=$(CURDIR)/$(BUILD) SOAK_SECONDS=$(SOAK_SECONDS) node tests/soak/soak.js

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(TSAN_BUILD) build-fuzz
