#!/bin/sh
# Installs the Debian packages packmesh needs to build, test and run its labs,
# and only those that are missing. Runs `apt-get update` once, and only when
# something has to be installed. Needs root (or sudo) when it installs.
# clang (with its libFuzzer runtime) runs the fuzz smoke of `make test`;
# packages named as arguments are wanted too (`make coverage` asks for
# gcovr that way).
set -eu

PKGS="build-essential cmake pkg-config python3 procps iproute2 nftables
gnuplot-nox libuv1-dev libsodium-dev libprotobuf-c-dev protobuf-c-compiler
liblmdb-dev libcmocka-dev clang libclang-rt-dev $*"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done

[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "deps: need root or sudo to install:$missing" >&2; exit 1; }
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
