#!/usr/bin/env bash
# The installed tapegrad on its own (issue 17). Copies the source tree to a temporary folder, builds and
# installs it into a temporary prefix, deletes the copy and its build, then, with nothing but
# PKG_CONFIG_PATH pointing into the prefix:
#   - builds tests/install/consumer (digits, a vanilla autoencoder, gradcheck) with meson and with plain
#     g++ $(pkg-config --cflags --libs tapegrad), no -std flag of its own, and runs both;
#   - runs the installed CLI, which must find the installed data: `tapegrad pca --data digits`;
#   - builds a user's program with a variant of its own on the installed command line
#     (tests/tools/user_variant.cpp, through tapegrad-cli.pc) with meson and with g++, and runs its
#     `variants` and a short `train --model jitter`.
# TAPEGRAD_DATA is unset throughout: the data must come from <prefix>/share/tapegrad.
#
#   tests/install/run.sh [SOURCE_ROOT]     (meson test -C build install; SOURCE_ROOT defaults to this checkout)
#
# The consumer comes from beside this script, so that another tree can be tried with it:
# `tests/install/run.sh ../main` shows what this test finds there.
#
# Each check prints ok or FAILED (with the end of its log); the script goes on where it can and exits 1
# when any check failed. The temporary folder is removed unless TAPEGRAD_KEEP_INSTALL_TEST=1.
# shellcheck disable=SC2317  # the functions below run through check, which shellcheck does not follow
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_root=$(cd "${1:-$here/../..}" && pwd)
unset TAPEGRAD_DATA

work=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-install-test.XXXXXX")
if [ "${TAPEGRAD_KEEP_INSTALL_TEST:-0}" = 1 ]; then
    echo "keeping $work"
else
    trap 'rm -rf "$work"' EXIT
    trap 'exit 143' INT TERM  # so that a timeout's kill still removes it
fi
src=$work/src
prefix=$work/prefix
logs=$work/logs
mkdir -p "$src" "$logs"

failed=()
# check NAME COMMAND...: runs the command with its output in $logs/NAME.log; says ok or FAILED.
check() {
    local name=$1 start=$SECONDS
    shift
    if "$@" >"$logs/$name.log" 2>&1; then
        echo "ok      $name ($((SECONDS - start)) s)"
        return 0
    fi
    echo "FAILED  $name ($((SECONDS - start)) s): $*"
    tail -n 25 "$logs/$name.log" | sed 's/^/        /'
    failed+=("$name")
    return 1
}
skip() {
    echo "SKIPPED $1: $2"
    failed+=("$1")
}
finish() {
    echo "install test: ${#failed[@]} failed${failed[*]:+: ${failed[*]}} (${SECONDS} s)"
    if [ ${#failed[@]} -eq 0 ]; then
        exit 0
    fi
    exit 1
}

echo "source $source_root"
echo "work   $work"

# The files of the checkout as they are on disk (committed or not, new files included, ignored ones not);
# a tree that is not a git checkout is copied whole, without its build folders.
copy_tree() {
    if git -C "$source_root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$source_root" && git ls-files -z --cached --others --exclude-standard |
            while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
            tar --null -T - -cf -) | tar -xf - -C "$src"
    else
        (cd "$source_root" && tar --exclude='./build' --exclude='./build-*' --exclude='./runs' -cf - .) |
            tar -xf - -C "$src"
    fi
}
check copy copy_tree || finish
cp -r "$here/consumer" "$work/consumer"
cp -r "$here/user_program" "$work/user_program"
cp "$here/../tools/user_variant.cpp" "$work/user_program/"

check configure meson setup "$src/build" "$src" --prefix="$prefix" --buildtype=release -Dtests=false || finish
# Only what gets installed (the library and the CLI, as meson lists them), not the examples and benches.
installed_targets() {
    meson introspect --targets "$src/build" | python3 -c '
import json, os, sys
for target in json.load(sys.stdin):
    if target["installed"]:
        print("\n".join(os.path.relpath(f, sys.argv[1]) for f in target["filename"]))' "$src/build"
}
build_installed() {
    local targets
    targets=$(installed_targets) || return 1
    echo "building ${targets//$'\n'/ }"
    # shellcheck disable=SC2086  # one target a word
    ninja -C "$src/build" $targets
}
check build build_installed || finish
check install meson install -C "$src/build" --no-rebuild || finish

# Out of reach: the library remembers the copy's data/ (nn/io/datasets.cpp) and must not find it.
rm -rf "$src"
echo "deleted the copied source tree and its build"

pc=$(find "$prefix" -name tapegrad.pc)
if [ -z "$pc" ]; then
    skip pkg-config "no tapegrad.pc under $prefix"
    finish
fi
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
check pkg-config pkg-config --cflags --libs tapegrad || finish
echo "        $(cat "$logs/pkg-config.log")"
libdir=$(pkg-config --variable=libdir tapegrad)

# Every installed header compiles with those flags alone (none includes a file that stays behind).
headers_compile() {
    (cd "$prefix/include" && find tapegrad -name '*.hpp' | sort | sed 's/.*/#include "&"/') >"$work/headers.cpp"
    # shellcheck disable=SC2046
    g++ -fsyntax-only "$work/headers.cpp" $(pkg-config --cflags tapegrad)
}
check headers headers_compile || true

# The consumer prints the data folder it used: it must be the installed one. (Called from check, so
# errexit is off here: each step says how it fails.)
run_consumer() {
    local out
    out=$work/$(basename "$1").out
    LD_LIBRARY_PATH=$libdir "$1" | tee "$out" || return 1
    grep -qx "data_dir $prefix/share/tapegrad" "$out" || { echo "data_dir is not $prefix/share/tapegrad"; return 1; }
}

if check consumer-meson-setup meson setup "$work/consumer-build" "$work/consumer" &&
    check consumer-meson-build ninja -C "$work/consumer-build"; then
    check consumer-meson-run run_consumer "$work/consumer-build/consumer" || true
else
    skip consumer-meson-run "not built"
fi

# shellcheck disable=SC2046  # pkg-config's output is meant to be split into arguments
if check consumer-g++-build g++ -o "$work/consumer-gxx" "$work/consumer/main.cpp" $(pkg-config --cflags --libs tapegrad); then
    check consumer-g++-run run_consumer "$work/consumer-gxx" || true
else
    skip consumer-g++-run "not built"
fi

# The installed CLI, with no LD_LIBRARY_PATH (its rpath finds the library) and no TAPEGRAD_DATA.
if [ -x "$prefix/bin/tapegrad" ]; then
    check cli-pca "$prefix/bin/tapegrad" pca --data digits --components 4 --out "$work/pca" &&
        { check cli-pca-output test -s "$work/pca/metrics.json" || true; }
else
    skip cli-pca "$prefix/bin/tapegrad is not installed"
fi

# A user's program: its variant registered, the installed command line on it, the installed data.
run_user_program() {
    local out
    out=$work/$(basename "$(dirname "$1")")-$(basename "$1")
    LD_LIBRARY_PATH=$libdir "$1" variants | tee "$out.variants" || return 1
    grep -q '^jitter: ' "$out.variants" || { echo "variants does not list jitter"; return 1; }
    LD_LIBRARY_PATH=$libdir "$1" train --model jitter --data digits --hidden 8 --latent 2 --epochs 1 --no-figures \
        --out "$out.run" || return 1
    grep -q '"variant": "jitter"' "$out.run/metrics.json" || { echo "metrics.json is not jitter's"; return 1; }
}
if check user-program-meson-setup meson setup "$work/user-program-build" "$work/user_program" &&
    check user-program-meson-build ninja -C "$work/user-program-build"; then
    check user-program-meson-run run_user_program "$work/user-program-build/user_variant" || true
else
    skip user-program-meson-run "not built"
fi
# shellcheck disable=SC2046  # pkg-config's output is meant to be split into arguments
if check user-program-g++-build g++ -o "$work/user_variant" "$work/user_program/user_variant.cpp" \
    $(pkg-config --cflags --libs tapegrad-cli); then
    check user-program-g++-run run_user_program "$work/user_variant" || true
else
    skip user-program-g++-run "not built"
fi

[ -f "$prefix/share/tapegrad/digits.csv.gz" ] || skip data "$prefix/share/tapegrad/digits.csv.gz is not installed"
finish
