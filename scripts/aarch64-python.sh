#!/usr/bin/env bash
# An arm64 CPython 3.11 (Debian bookworm's, as on Raspberry Pi OS 12) unpacked into a folder, to
# run under qemu-aarch64-static:
#
#   scripts/aarch64-python.sh ROOT      then: qemu-aarch64-static -L ROOT ROOT/usr/bin/python3.11
#
# Debian's python3.11:arm64 cannot be installed beside the x86_64 one (they are not co-installable
# in multiarch), so its packages and their arm64 libraries are downloaded with apt-get and
# unpacked, not installed. Without binfmt_misc an aarch64 program cannot exec another one, so
# everything runs through qemu-aarch64-static explicitly. Idempotent: a stamp lists what is in.
set -euo pipefail
root=${1:?usage: aarch64-python.sh ROOT}
mkdir -p "$root"
root=$(cd "$root" && pwd)
debs=$root.debs
stamp=$root/.edgectl-packages

top=(python3.11:arm64 python3.11-venv:arm64 libstdc++6:arm64 libgomp1:arm64)
# the arm64 closure of what python3.11 needs (dpkg, perl and such come along and are harmless)
mapfile -t pkgs < <(
    apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances "${top[@]}" 2>/dev/null |
        grep -E '^[a-z0-9][^ ]*:arm64$' | sort -u
)
# architecture-independent wheels of pip and setuptools, for `python -m venv`
pkgs+=(python3-pip-whl python3-setuptools-whl)
if [[ ${#pkgs[@]} -lt 10 ]]; then
    echo "aarch64-python: apt knows no arm64 packages: run scripts/pi-deps.sh test first" >&2
    exit 2
fi
want=$(printf '%s\n' "${pkgs[@]}")
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$root/usr/bin/python3.11" ]]; then
    exit 0
fi

echo "aarch64-python: unpacking ${#pkgs[@]} Debian packages into $root" >&2
mkdir -p "$debs"
(cd "$debs" && apt-get download -qq "${pkgs[@]}")
for deb in "$debs"/*.deb; do
    dpkg-deb -x "$deb" "$root"
done
# Debian's merged /usr: /lib and /bin are links into /usr in a real arm64 root
for d in lib bin sbin; do
    if [[ -d "$root/$d" && ! -L "$root/$d" ]]; then
        cp -a "$root/$d/." "$root/usr/$d/"
        rm -rf "${root:?}/$d"
    fi
    [[ -e "$root/$d" ]] || ln -s "usr/$d" "$root/$d"
done
printf '%s\n' "$want" >"$stamp"
