#!/usr/bin/env bash
# Debian packages of the fleet tests and `make fleet-demo`, installed only when missing:
# mosquitto (the MQTT broker) and postgresql-15 (the site historian). Their system services are
# not used: edgectl.fleet.localsvc starts private instances on loopback, on free ports, in
# temporary directories. Runs as root (CI) or through sudo.
set -euo pipefail
# dpkg needs the sbin directories (ldconfig, start-stop-daemon); CI's PATH has none of them
export PATH="/usr/local/sbin:/usr/sbin:/sbin:$PATH"

pkgs=(mosquitto postgresql-15)
sudo_=()
if [[ $(id -u) -ne 0 ]]; then
    sudo_=(sudo)
fi

# initdb refuses root: as root, edgectl.fleet.localsvc runs PostgreSQL as this system user
if [[ $(id -u) -eq 0 ]] && ! getent passwd edgectl-pg >/dev/null; then
    /usr/sbin/useradd --system --no-create-home --shell /usr/sbin/nologin edgectl-pg
fi

missing=()
for p in "${pkgs[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

echo "fleet-deps: installing ${missing[*]}" >&2
"${sudo_[@]}" apt-get update -qq
# policy-rc.d 101: the packages' own system services are not started on install.
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_[@]}" tee "$policy" >/dev/null
    "${sudo_[@]}" chmod +x "$policy"
    made_policy=1
fi
trap '[[ $made_policy -eq 1 ]] && "${sudo_[@]}" rm -f "$policy"' EXIT
"${sudo_[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
