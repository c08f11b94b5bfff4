# Two commands on a fresh Debian 12 machine: `make demo` and `make test`. Each installs what is missing
# through apt-get, configures a release build with meson, builds, and runs. Run twice, they redo nothing.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

BUILD ?= build
PACKAGES := g++ meson ninja-build pkg-config xtensor-dev libxtensor-blas-dev libxsimd-dev libopenblas-dev \
            libblis-dev liblapack-dev libfmt-dev doctest-dev nlohmann-json3-dev libcli11-dev zlib1g-dev libzip-dev \
            python3-numpy python3-sklearn libstb-dev gnuplot-nox fonts-dejavu-core ccache strace \
            libdnnl-dev openmpi-bin libopenmpi-dev
# Fashion-MNIST is installed by the commands that read it, never committed.
DATA_PACKAGES := dataset-fashion-mnist
BENCH_PACKAGES := python3-torch python3-numpy
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Installs the Debian packages in $(1) that are not installed yet; nothing when all are.
define install_missing
missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed' || echo "$$p"; done); \
if [ -n "$$missing" ]; then \
  echo "installing:" $$missing; \
  $(SUDO) apt-get update -q; \
  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
fi
endef

.PHONY: all deps data-deps bench-deps build test test-sanitize demo experiments bench clean

all: build

deps:
	@$(call install_missing,$(PACKAGES))

data-deps: deps
	@$(call install_missing,$(DATA_PACKAGES))

bench-deps: deps
	@$(call install_missing,$(BENCH_PACKAGES))

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) --buildtype=release

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# meson runs every test binary; each prints doctest's summary, and the last line adds them up.
test: build data-deps
	meson test -C $(BUILD) --print-errorlogs --verbose 2>&1 | tee $(BUILD)/test-output.txt
	@awk -F'|' '/\[doctest\] test cases:/ { split($$2, p, " "); split($$3, f, " "); passed += p[1]; failed += f[1] } \
	  END { printf "%d passed, %d failed\n", passed, failed; exit failed > 0 }' $(BUILD)/test-output.txt

# The same suite built with AddressSanitizer and UndefinedBehaviorSanitizer (leaks included), in its
# own build folder: any report fails the test that made it.
SANITIZE_BUILD ?= build-sanitize
$(SANITIZE_BUILD)/build.ninja: | deps
	meson setup $(SANITIZE_BUILD) --buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false

test-sanitize: deps data-deps $(SANITIZE_BUILD)/build.ninja
	ninja -C $(SANITIZE_BUILD)
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
	  meson test -C $(SANITIZE_BUILD) --print-errorlogs --verbose 2>&1 | tee $(SANITIZE_BUILD)/test-output.txt
	@awk -F'|' '/\[doctest\] test cases:/ { split($$2, p, " "); split($$3, f, " "); passed += p[1]; failed += f[1] } \
	  END { printf "sanitizers: %d passed, %d failed\n", passed, failed; exit failed > 0 }' $(SANITIZE_BUILD)/test-output.txt

# Experiment 2 of the README: autoencoders against PCA on the bundled digits, into runs/demo/. Builds the
# demo and the library it links, not the whole tree.
demo: deps $(BUILD)/build.ninja
	ninja -C $(BUILD) examples/digits_demo
	$(BUILD)/examples/digits_demo --out runs/demo --overwrite

# The tutorials' experiments, both protocols, into runs/tutorials/: every command EXPERIMENTS.md shows, read
# from EXPERIMENTS.md itself and run in order from $(BUILD) (the commands say build/), replacing what an
# earlier `make experiments` left there.
experiments: build data-deps
	@grep -E '^build/examples/' EXPERIMENTS.md | sed 's|^build/|$(BUILD)/|' | while read -r command; do \
	  echo "$$command"; $$command --overwrite || exit 1; \
	done

bench: build bench-deps data-deps
	/usr/bin/python3 bench/run_autodiff.py --build $(BUILD)
	/usr/bin/python3 bench/run_train.py --build $(BUILD)
	/usr/bin/python3 bench/run_distributed.py --build $(BUILD)

clean:
	rm -rf $(BUILD) $(SANITIZE_BUILD)

# libFuzzer targets for every file reader (fuzz/README.md), in $(FUZZ_BUILD): clang with AddressSanitizer and
# UndefinedBehaviorSanitizer, seeds written by make_seeds from real files. `make fuzz` runs each target a
# million times, `make fuzz-short` (CI) 20000 times or 30 seconds, whichever comes first; either fails when a
# target finds anything, and the input is saved under fuzz/regressions/<target>/, which the normal suite
# replays (tests/nn/fuzz_regression_test.cpp).
FUZZ_BUILD ?= build-fuzz
FUZZ_PACKAGES := clang-14 libclang-rt-14-dev
$(FUZZ_BUILD)/build.ninja: | deps
	@$(call install_missing,$(FUZZ_PACKAGES))
	CC=clang-14 CXX=clang++-14 meson setup $(FUZZ_BUILD) --buildtype=debugoptimized -Dfuzz=true -Dtests=false \
	  -Db_sanitize=address,undefined -Db_lundef=false

define fuzz_run
@$(call install_missing,$(FUZZ_PACKAGES))
ninja -C $(FUZZ_BUILD) fuzz
$(FUZZ_BUILD)/fuzz/make_seeds $(FUZZ_BUILD)/fuzz/seeds
fuzz/run.sh $(FUZZ_BUILD) $(1)
endef

.PHONY: fuzz fuzz-short
fuzz: deps data-deps $(FUZZ_BUILD)/build.ninja
	$(call fuzz_run,-runs=1000000)

fuzz-short: deps data-deps $(FUZZ_BUILD)/build.ninja
	$(call fuzz_run,-runs=20000 -max_total_time=30)
