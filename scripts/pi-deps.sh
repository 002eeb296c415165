#!/usr/bin/env bash
# Debian packages of the aarch64 (Raspberry Pi) build and tests, installed only when missing.
#
#   scripts/pi-deps.sh build   rustc-web/cargo-web 1.96 and its aarch64 standard library
#                              (libstd-rust-web-dev:arm64), the aarch64 cross linker
#   scripts/pi-deps.sh test    + qemu-user-static (runs aarch64 programs on x86_64) and Debian's
#                              arm64 glibc (libc6:arm64) for the Rust test binaries
#
# Everything comes from Debian's archive (bookworm): the rustup toolchain of this machine has only
# the x86_64 standard library, and `rustup target add` would download from elsewhere. Debian's
# compiler is used for the cross build because a standard library links only with the exact
# compiler that built it. Runs as root (CI) or through sudo.
set -euo pipefail

want=${1:-build}
pkgs=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
if [[ "$want" == test ]]; then
    # the test binaries run on Debian's arm64 C library, loader and libc from one package
    # (scripts/test-aarch64.sh says why not the cross sysroot's)
    pkgs+=(qemu-user-static libc6:arm64 libgcc-s1:arm64)
fi

sudo_=()
if [[ $(id -u) -ne 0 ]]; then
    sudo_=(sudo)
fi

missing=()
for p in "${pkgs[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

echo "pi-deps: installing ${missing[*]}" >&2
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    "${sudo_[@]}" dpkg --add-architecture arm64
fi
"${sudo_[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
