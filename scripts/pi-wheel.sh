#!/usr/bin/env bash
# The Raspberry Pi wheel: edgectl for aarch64-unknown-linux-gnu, abi3 (one wheel for every
# CPython >= 3.11), a manylinux tag, firmware profiles and board maps inside as package data.
#
#   scripts/pi-wheel.sh [OUT_DIR]      (default target/wheels-aarch64; `make pi-wheel`)
#
# Cross-built on x86_64 from Debian's packages only (scripts/pi-deps.sh): Debian's rustc/cargo
# 1.96 (rustc-web) with the aarch64 standard library built by the same compiler, and
# aarch64-linux-gnu-gcc as the linker. The build has its own target folder, since the rustup
# toolchain and Debian's compiler cannot share artifacts. maturin comes from the dev group.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${1:-target/wheels-aarch64}
maturin=${MATURIN:-$root/.venv/bin/maturin}
[[ -x "$maturin" ]] || { echo "pi-wheel: $maturin missing: run make install first" >&2; exit 2; }

scripts/pi-deps.sh build

export CARGO_TARGET_DIR=$root/target/aarch64-debian
export RUSTC=/usr/bin/rustc
export CARGO=/usr/bin/cargo
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# maturin runs `cargo` from PATH: Debian's comes first, never rustup's proxy
shim=$CARGO_TARGET_DIR/debian-bin
mkdir -p "$shim"
ln -sfn /usr/bin/cargo "$shim/cargo"
ln -sfn /usr/bin/rustc "$shim/rustc"
export PATH=$shim:$PATH

rm -f "$out"/edgectl-*-linux_aarch64.whl "$out"/edgectl-*manylinux*_aarch64.whl
"$maturin" build --release --locked --target aarch64-unknown-linux-gnu --out "$out"

wheel=$(ls "$out"/edgectl-*_aarch64.whl)
# the wheel must carry the profiles and an aarch64 extension, or it is no Pi wheel
python3 - "$wheel" <<'EOF'
import sys, zipfile
path = sys.argv[1]
names = zipfile.ZipFile(path).namelist()
profiles = [n for n in names if n.startswith("edgectl/firmware_profiles/") and n.endswith(".toml")]
boards = [n for n in profiles if "/boards/" in n]
core = [n for n in names if n.startswith("edgectl/_core") and n.endswith(".so")]
elf = zipfile.ZipFile(path).read(core[0])[:20] if core else b""
if not profiles or not boards or not core or elf[18] != 183:  # e_machine 183 = EM_AARCH64
    sys.exit(f"pi-wheel: {path}: profiles {len(profiles)}, boards {len(boards)}, core {core}")
print(f"pi-wheel: {path} ({len(profiles)} profiles, {len(boards)} board maps)")
EOF
