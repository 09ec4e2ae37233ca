# shellcheck shell=bash
# Sourced by scripts/test-host.sh: puts a current Caddy into the test image's root file system.
#   install_current_caddy <log function> <rootfs> <work dir>
#
# Why: the proxy's default image is caddy:2.10.2, released built with Go 1.25 (its
# .github/workflows/release.yml: GO_SEMVER ~1.25.0). Bookworm's caddy package is 2.6.2, built with
# Go 1.19, and the two behave differently where a route change is concerned: from Go 1.25, net/http
# drops a request it reads after Server.Shutdown began (src/net/http/server.go, conn.serve: "if
# c.server.shuttingDown() { return }" right after readRequest; absent from Go 1.24.4, present in
# 1.25.12 and 1.26.10), which every Caddy config reload does to the old config's server. The real
# tests must see what the default image does, so the test image carries Debian unstable's Caddy
# (2.11.x, built with Go 1.26), the closest build this machine can reach.
#
# Trust: the InRelease file is checked with gpgv against the machine's Debian archive keyring, the
# Packages index against the SHA-256 that InRelease lists, and the .deb against the SHA-256 the
# index lists; only the caddy binary is taken (a static Go program needing libc >= 2.34;
# bookworm has 2.36).
install_current_caddy() {
  local log_fn=$1 rootfs=$2 work=$3
  local mirror=http://deb.debian.org/debian suite=sid arch index_sum entry file deb_sum version
  arch=$(dpkg --print-architecture)
  mkdir -p "$work"
  curl -fsS -m 60 -o "$work/InRelease" "$mirror/dists/$suite/InRelease"
  gpgv --keyring /usr/share/keyrings/debian-archive-keyring.gpg "$work/InRelease" 2>"$work/gpgv.log" \
    || { "$log_fn" "the $suite InRelease signature does not verify (see $work/gpgv.log)"; return 1; }
  # The SHA256 section of InRelease: "<sum> <size> main/binary-<arch>/Packages.xz".
  index_sum=$(awk -v f="main/binary-$arch/Packages.xz" '/^SHA256:/{s=1; next} /^[^ ]/{s=0} s && $3==f {print $1}' "$work/InRelease")
  [[ -n "$index_sum" ]] || { "$log_fn" "InRelease lists no main/binary-$arch/Packages.xz"; return 1; }
  curl -fsS -m 120 -o "$work/Packages.xz" "$mirror/dists/$suite/main/binary-$arch/Packages.xz"
  echo "$index_sum  $work/Packages.xz" | sha256sum -c --quiet - \
    || { "$log_fn" "Packages.xz does not match the SHA-256 in InRelease"; return 1; }
  entry=$(xz -dc "$work/Packages.xz" | awk '/^Package: caddy$/{p=1} p && /^$/{exit} p')
  file=$(sed -n 's/^Filename: //p' <<<"$entry")
  deb_sum=$(sed -n 's/^SHA256: //p' <<<"$entry")
  version=$(sed -n 's/^Version: //p' <<<"$entry")
  [[ -n "$file" && -n "$deb_sum" ]] || { "$log_fn" "the $suite index has no caddy package"; return 1; }
  "$log_fn" "Caddy $version from Debian $suite (verified: InRelease signature, index and package SHA-256)"
  curl -fsS -m 300 -o "$work/caddy.deb" "$mirror/$file"
  echo "$deb_sum  $work/caddy.deb" | sha256sum -c --quiet - \
    || { "$log_fn" "caddy.deb does not match the SHA-256 in the index"; return 1; }
  dpkg-deb -x "$work/caddy.deb" "$work/caddy"
  install -m 0755 "$work/caddy/usr/bin/caddy" "$rootfs/usr/bin/caddy"
}
