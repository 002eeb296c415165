#!/usr/bin/env bash
# edgectl as aarch64 (Raspberry Pi OS 64-bit), tested on x86_64 under qemu-aarch64-static:
#
#   1. the Rust core's tests, cross-built for aarch64-unknown-linux-gnu and run under qemu;
#   2. the aarch64 wheel (scripts/pi-wheel.sh) installed into a clean virtualenv of Debian's
#      arm64 CPython 3.11 (scripts/aarch64-python.sh), with the dependencies' aarch64 wheels at
#      the versions of uv.lock;
#   3. the main job run from that virtualenv outside the repository (profiles from the wheel);
#   4. the control, soft-sensor/spectra, plant/sim and engine tests of tests/ against the wheel.
#
# `make test-aarch64` (all), or `scripts/test-aarch64.sh rust|python` for one half. Only Debian's packages and PyPI are used. qemu gives correctness, not
# speed: no figure measured here says anything about a Pi.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
arch_root=$root/target/aarch64-root
venv=$root/target/aarch64-venv
wheelhouse=$root/target/aarch64-wheelhouse
qemu=(qemu-aarch64-static -L "$arch_root")

part=${1:-all}
step() { printf '\n== test-aarch64: %s\n' "$*"; }

scripts/pi-deps.sh test

if [[ "$part" != python ]]; then
step "Rust core tests (aarch64-unknown-linux-gnu under qemu)"
(
    export CARGO_TARGET_DIR=$root/target/aarch64-debian
    export RUSTC=/usr/bin/rustc
    # the doctests too: rustup's rustdoc on PATH has no aarch64 standard library
    export RUSTDOC=/usr/bin/rustdoc
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    # The binaries run on Debian's arm64 glibc (libc6:arm64, the C library of Raspberry Pi OS
    # 12), dynamic loader and libc.so.6 from the same package. Never `-L /usr/aarch64-linux-gnu`:
    # that takes the loader from libc6-arm64-cross (2.36-8cross1) while the loader's search
    # (the host's ld.so.cache, /lib/aarch64-linux-gnu) finds libc.so.6 of libc6:arm64
    # (2.36-9+deb12u*, pulled in by libstd-rust-web-1.96:arm64). A loader and a libc of two
    # glibc builds disagree on their private layout: the first pthread_create spins at 100 %
    # CPU for ever, so every libtest binary hung (libtest runs each test on a thread). That was
    # the "qemu 7.2 hang"; qemu 7.2 runs the same binaries fine on one consistent glibc.
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -L /"
    # optimised test binaries: unoptimised property tests are far too slow under emulation
    # (debug assertions and overflow checks stay on)
    export CARGO_PROFILE_DEV_OPT_LEVEL=2 CARGO_PROFILE_DEV_DEBUG=0
    # a bound, so that a hang is a failure and never a stuck CI job
    timeout "${AARCH64_RUST_TIMEOUT_S:-2400}" \
        /usr/bin/cargo test -p edgectl-core --locked --target aarch64-unknown-linux-gnu
)
fi
[[ "$part" != rust ]] || exit 0

step "aarch64 wheel"
scripts/pi-wheel.sh target/wheels-aarch64
wheel=$(ls "$root"/target/wheels-aarch64/edgectl-*_aarch64.whl)

step "arm64 CPython 3.11 from Debian"
scripts/aarch64-python.sh "$arch_root"
python_arm64=$arch_root/usr/bin/python3.11

step "aarch64 wheels of the locked dependencies"
requirements=$root/target/aarch64-requirements.txt
# At uv.lock's versions, every one pinned: the wheel's whole runtime closure (what a Pi install
# pulls in) and the closure of what the tests below import. Downloaded and installed with
# --no-deps, then `pip check`: a dependency missing from this list fails the step instead of
# coming unpinned from the index (or from a stale wheel of an earlier run).
{
    .tools/bin/uv export --frozen --no-hashes --no-emit-project --no-dev
    .tools/bin/uv export --frozen --no-hashes --no-emit-project --all-groups |
        grep -E '^(pytest|pytest-timeout|pytest-benchmark|py-cpuinfo2|hypothesis|sortedcontainers|attrs|iniconfig|pluggy|pygments|scipy|scikit-learn|joblib|threadpoolctl|narwhals|cloudpickle|simple-pid)=='
} | grep -v '^ *#' | sort -u | .tools/bin/python -c '
# keep the lines whose markers hold on the target (Debian 12 arm64 CPython 3.11), unmarked
import sys
from pip._vendor.packaging.markers import Marker
target = {"python_version": "3.11", "python_full_version": "3.11.2", "platform_machine": "aarch64",
          "sys_platform": "linux", "os_name": "posix", "implementation_name": "cpython",
          "platform_python_implementation": "CPython", "platform_system": "Linux"}
for line in sys.stdin:
    req, _, marker = line.partition(";")
    if not marker.strip() or Marker(marker.strip()).evaluate(target):
        print(req.strip())
' >"$requirements"
# every manylinux tag glibc 2.36 (Debian 12, Raspberry Pi OS 12) accepts: pip does not expand them
platforms=(--platform manylinux2014_aarch64)
for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_aarch64"); done
.tools/bin/python -m pip download --quiet --disable-pip-version-check --dest "$wheelhouse" \
    --no-deps --only-binary=:all: --implementation cp --python-version 3.11 "${platforms[@]}" \
    --abi cp311 --abi abi3 --abi none -r "$requirements"

step "clean arm64 virtualenv with the wheel"
rm -rf "$venv"
"${qemu[@]}" "$python_arm64" -m venv --without-pip "$venv"
# pip runs from Debian's pip wheel (ensurepip would exec a second aarch64 process, which qemu
# without binfmt_misc cannot start)
pip_whl=$(ls "$arch_root"/usr/share/python-wheels/pip-*.whl)
"${qemu[@]}" "$venv/bin/python" "$pip_whl/pip" install --quiet --disable-pip-version-check \
    --no-deps --no-index --find-links "$wheelhouse" -r "$requirements" "$wheel"
"${qemu[@]}" "$venv/bin/python" "$pip_whl/pip" check --disable-pip-version-check
vpy=("${qemu[@]}" "$venv/bin/python")

step "main job from the virtualenv, outside the repository"
job=$(mktemp -d)
trap 'rm -rf "$job"' EXIT
cp examples/ecoli-fedbatch-2L.toml "$job/reactor.toml"
shipped=$(find firmware_profiles -name '*.toml' | wc -l)
(
    cd "$job"
    unset EDGECTL_PROFILE_DIR PYTHONPATH
    "${vpy[@]}" -c '
import platform, sys
from pathlib import Path
import edgectl, edgectl._core
from edgectl.io.profile import iter_profiles, profile_root
root = profile_root()
assert platform.machine() == "aarch64", platform.machine()
assert edgectl.__file__.startswith(sys.prefix), edgectl.__file__
assert edgectl._core.__file__.startswith(sys.prefix), edgectl._core.__file__
assert root == Path(edgectl.__file__).parent / "firmware_profiles", f"profiles from {root}"
assert len(iter_profiles()) == int(sys.argv[1]), (len(iter_profiles()), sys.argv[1])
print(f"aarch64 wheel: edgectl {edgectl.__version__} from {edgectl.__file__}")
print(f"profiles: {len(iter_profiles())} in {root}")
' "$shipped"
    "${vpy[@]}" "$venv/bin/edgectl" run reactor.toml --speed 3600 --duration 0.1 | tee job.out
    grep -q ecoli-2L job.out
    test -s runs/ecoli-2L.db
)

step "Python tests against the aarch64 wheel (under qemu)"
# The two example-script tests of test_sim.py start `sys.executable` as a child process, which
# needs binfmt_misc under qemu; they are deselected here and run natively in make test-py.
"${vpy[@]}" -m pytest -p no:cacheprovider \
    -o addopts="--strict-markers -ra" -o timeout=1800 \
    tests/test_control.py tests/test_control_simple_pid.py tests/test_spectra.py \
    tests/test_runtime_softsensor.py tests/test_runtime_engine.py tests/test_sim.py \
    tests/test_errors.py \
    --deselect tests/test_sim.py::test_example_script_writes_csv \
    --deselect tests/test_sim.py::test_cho_example_writes_csv
