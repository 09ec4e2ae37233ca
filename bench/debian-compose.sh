#!/usr/bin/env bash
# Prints the path of a Docker Compose v2 binary from Debian's own archive, fetching it once.
#
# Bookworm's docker-compose is 1.29 (no `up --wait`); trixie's is 2.x and runs on bookworm
# (needs glibc >= 2.34). The download is checked the way apt checks it: InRelease's signature
# against debian-archive-keyring, then Packages' hash from InRelease, then the .deb's hash from
# Packages. Nothing is installed system-wide: the binary is extracted under $CACHE.
set -euo pipefail
SUITE="${COMPOSE_SUITE:-trixie}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE="${COMPOSE_CACHE:-/tmp/mmagent-compose-$SUITE}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
ARCH=$(dpkg --print-architecture)
bin="$CACHE/usr/libexec/docker/cli-plugins/docker-compose"
if [[ -x "$bin" ]]; then echo "$bin"; exit 0; fi

command -v gpgv >/dev/null && [[ -f "$KEYRING" ]] || { echo "need gpgv and debian-archive-keyring" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
curl -fsS "$MIRROR/dists/$SUITE/InRelease" -o "$work/InRelease"
gpgv --keyring "$KEYRING" --output "$work/Release" "$work/InRelease" 2>/dev/null || { echo "InRelease signature check failed" >&2; exit 1; }
packages="main/binary-$ARCH/Packages.xz"
want=$(awk -v f="$packages" '/^SHA256:/{s=1;next} /^[A-Za-z]/{s=0} s && $3==f {print $1}' "$work/Release")
[[ -n "$want" ]] || { echo "$packages not listed in Release" >&2; exit 1; }
curl -fsS "$MIRROR/dists/$SUITE/$packages" -o "$work/Packages.xz"
echo "$want  $work/Packages.xz" | sha256sum -c --quiet
read -r file sha < <(xz -dc "$work/Packages.xz" | awk '/^Package: docker-compose$/{p=1} p&&/^Filename:/{f=$2} p&&/^SHA256:/{s=$2} p&&/^$/{print f, s; exit}')
[[ -n "$file" && -n "$sha" ]] || { echo "docker-compose not found in $SUITE" >&2; exit 1; }
curl -fsS "$MIRROR/$file" -o "$work/compose.deb"
echo "$sha  $work/compose.deb" | sha256sum -c --quiet
mkdir -p "$CACHE"
dpkg-deb -x "$work/compose.deb" "$CACHE"
[[ -x "$bin" ]] || bin=$(find "$CACHE" -type f -name docker-compose -perm -u+x | head -1)
echo "$bin"
