#!/usr/bin/env bash
# The reverse proxy's routes, changed in place: writes the generated Caddy (or HAProxy) config into the
# proxy's config volume only after the proxy image's own binary has validated it, then makes the
# running proxy load it without replacing the container (in-flight requests finish; listeners
# stay open). A config the binary refuses changes nothing: the file and the running proxy keep
# the routes they had.
#
# Every parameter arrives as an environment variable (never interpolated into a command line by
# the caller) and is re-validated here.
#
#   MMAGENT_CONFIG_DIR  host path of the proxy's config volume (absolute)
#   MMAGENT_MOUNT       where that volume is mounted in the proxy container (absolute)
#   MMAGENT_ENGINE      caddy (the default) or haproxy
#   MMAGENT_CONFIG      the Caddy JSON config, or the HAProxy config text
#   MMAGENT_CONTAINER   the proxy container's name
#   MMAGENT_IMAGE       the image the proxy runs (its binary validates the config)
#   MMAGENT_RELOAD      api     — `caddy reload` inside the container, through the admin API on
#                                 the container's own loopback (MMAGENT_ADMIN, host:port)
#                       restart — `docker restart` (the admin API is off): connections are
#                                 refused for about a second
#                       signal  — HAProxy: SIGUSR2 to its master (master-worker mode), which
#                                 loads the file in a new worker that takes the listening sockets
#                                 over; the old worker finishes what it accepted
#   MMAGENT_CERTS       engine haproxy with tls internal: how many host certificates follow (0-256);
#   MMAGENT_CERT_<n>    n = 1..MMAGENT_CERTS: a certificate and its private key, PEM. Written as
#                       certs/<n>.pem, the directory readable by the proxy image's user alone, and
#                       replaced whole with the config. Unset: no certs/ directory (one left from
#                       earlier is removed once the proxy has the new config).
#
# stdout: one JSON object {"file", "sha256", "applied": "reloaded" | "restarted" | "written"}
# ("written": no running proxy; it reads the file when it starts).
set -euo pipefail
export LC_ALL=C

die() { printf 'mmagent proxy-config: %s\n' "$*" >&2; exit 1; }

PATH_RE='^(/[A-Za-z0-9._@+][A-Za-z0-9._@+-]*)+$'
NAME_RE='^[a-z][a-z0-9-]{0,30}[a-z0-9]$'
IMAGE_RE='^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,511}$'
ADMIN_RE='^127\.0\.0\.1:[0-9]{1,5}$'

require_match() { # value regex description
  [[ "$1" =~ $2 ]] || die "invalid $3: '$(printf '%q' "$1" | cut -c1-80)'"
}

DIR="${MMAGENT_CONFIG_DIR:-}"
MOUNT="${MMAGENT_MOUNT:-}"
CONTAINER="${MMAGENT_CONTAINER:-}"
IMAGE="${MMAGENT_IMAGE:-}"
RELOAD="${MMAGENT_RELOAD:-}"
ENGINE="${MMAGENT_ENGINE:-caddy}"
require_match "$DIR" "$PATH_RE" "MMAGENT_CONFIG_DIR (absolute path)"
require_match "$MOUNT" "$PATH_RE" "MMAGENT_MOUNT (absolute path)"
for p in "$DIR/" "$MOUNT/"; do [[ "$p" != *"/../"* && "$p" != *"/./"* ]] || die "paths must not contain . or .. segments: $p"; done
require_match "$CONTAINER" "$NAME_RE" "MMAGENT_CONTAINER"
require_match "$IMAGE" "$IMAGE_RE" "MMAGENT_IMAGE"
case "$ENGINE:$RELOAD" in
  caddy:api) require_match "${MMAGENT_ADMIN:-}" "$ADMIN_RE" "MMAGENT_ADMIN (the admin API on the container's loopback)" ;;
  caddy:restart | haproxy:signal) ;;
  caddy:*) die "MMAGENT_RELOAD must be api or restart for MMAGENT_ENGINE caddy" ;;
  haproxy:*) die "MMAGENT_RELOAD must be signal for MMAGENT_ENGINE haproxy" ;;
  *) die "MMAGENT_ENGINE must be caddy or haproxy" ;;
esac
[[ -n "${MMAGENT_CONFIG:-}" ]] || die "MMAGENT_CONFIG is empty"
[[ -d "$DIR" ]] || die "the proxy's config volume $DIR does not exist (its storage ensure step creates it)"
CERTS="${MMAGENT_CERTS-}"
if [[ -n "${MMAGENT_CERTS+set}" ]]; then
  [[ "$ENGINE" == haproxy ]] || die "MMAGENT_CERTS is for MMAGENT_ENGINE haproxy only"
  [[ "$CERTS" =~ ^(0|[1-9][0-9]{0,2})$ && "$CERTS" -le 256 ]] || die "invalid MMAGENT_CERTS (a count, 0-256): '$(printf '%q' "$CERTS" | cut -c1-80)'"
  for ((n = 1; n <= CERTS; n++)); do
    var="MMAGENT_CERT_$n"
    pem="${!var:-}"
    # PEM only: BEGIN/END lines and base64, one certificate and one private key.
    if grep -qvE '^(-----(BEGIN|END) [A-Z ]{1,40}-----|[A-Za-z0-9+/=]{1,76})$' <<<"$pem"; then die "$var is not PEM text (a certificate and its key)"; fi
    [[ "$(grep -c -- '^-----BEGIN CERTIFICATE-----$' <<<"$pem")" == 1 && "$(grep -cE -- '^-----BEGIN ([A-Z]+ )?PRIVATE KEY-----$' <<<"$pem")" == 1 ]] ||
      die "$var must hold one certificate and one private key (PEM)"
  done
fi

# One change of this proxy's config at a time.
LOCK_DIR=/run/lock; [[ -d $LOCK_DIR ]] || LOCK_DIR=/tmp
exec 9>"$LOCK_DIR/mmagent-proxy-config.$CONTAINER.lock"
flock 9

FILE=caddy.json
[[ "$ENGINE" == caddy ]] || FILE=haproxy.cfg
NEXT=".$FILE.next"
umask 022
if [[ "$ENGINE" == caddy ]]; then
  printf '%s' "$MMAGENT_CONFIG" >"$DIR/$NEXT"
else
  # HAProxy refuses a last line without LF (the parameter may arrive without its final newline).
  printf '%s\n' "${MMAGENT_CONFIG%$'\n'}" >"$DIR/$NEXT"
fi
trap 'rm -f "$DIR/$NEXT"; rm -rf "$DIR/.certs.next"' EXIT

# The certificates, in a directory of their own beside the config until both are checked: owned by
# the image's user (the proxy runs as that user, and reads them at every reload), mode 0700/0600.
CERT_MOUNT=()
if [[ -n "$CERTS" ]]; then
  ids=$(docker run --rm --network none --cap-drop ALL --security-opt no-new-privileges --entrypoint id "$IMAGE") ||
    die "could not run $IMAGE to learn the user it runs as"
  [[ "$ids" =~ ^uid=([0-9]+)[^\ ]*\ gid=([0-9]+) ]] || die "unexpected output of id in $IMAGE: $(printf '%q' "$ids" | cut -c1-80)"
  owner="${BASH_REMATCH[1]}:${BASH_REMATCH[2]}"
  rm -rf "$DIR/.certs.next"
  (umask 077 && mkdir "$DIR/.certs.next")
  for ((n = 1; n <= CERTS; n++)); do
    var="MMAGENT_CERT_$n"
    (umask 077 && printf '%s\n' "${!var%$'\n'}" >"$DIR/.certs.next/$n.pem")
  done
  chown -R "$owner" "$DIR/.certs.next"
  # The check below sees the new directory where the proxy will (a mount point must exist).
  mkdir -p "$DIR/certs"
  CERT_MOUNT=(--mount "type=bind,source=$DIR/.certs.next,target=$MOUNT/certs,readonly")
fi

# The image's own binary decides: a throwaway container of the image the proxy runs (also before
# the proxy exists, and when an image change comes with the route change), without network or
# capabilities, with the config volume read-only. `caddy validate` provisions every module
# without starting a listener; `haproxy -c` parses and checks the whole file.
if [[ "$ENGINE" == caddy ]]; then
  if ! out=$(docker run --rm --network none --cap-drop ALL --security-opt no-new-privileges \
    --mount "type=bind,source=$DIR,target=$MOUNT,readonly" --entrypoint caddy "$IMAGE" \
    validate --config "$MOUNT/$NEXT" 2>&1); then
    die "the new config of $CONTAINER is not valid for $IMAGE; the proxy keeps its current routes. caddy validate said: $(printf '%s\n' "$out" | grep -v '"level":"info"' | tail -5)"
  fi
elif ! out=$(docker run --rm --network none --cap-drop ALL --security-opt no-new-privileges \
  --mount "type=bind,source=$DIR,target=$MOUNT,readonly" "${CERT_MOUNT[@]}" --entrypoint haproxy "$IMAGE" \
  -c -f "$MOUNT/$NEXT" 2>&1); then
  die "the new config of $CONTAINER is not valid for $IMAGE; the proxy keeps its current routes. haproxy -c said: $(printf '%s\n' "$out" | grep -F '[ALERT]' | tail -5)"
fi

# HAProxy's master-worker reload: SIGUSR2 to the master (through Docker's init, which forwards
# it), which re-executes itself on the new file; its own log line says how that went, "Loading
# success." or "Loading failure!" (the old worker is then resumed and keeps serving).
haproxy_reload() {
  local since out
  since=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
  docker kill -s USR2 "$CONTAINER" >/dev/null
  for _ in $(seq 1 300); do
    out=$(docker logs --since "$since" "$CONTAINER" 2>&1 || true)
    if grep -qF 'Loading success.' <<<"$out"; then return 0; fi
    if grep -qF 'Loading failure!' <<<"$out"; then
      printf '%s\n' "$out" | grep -F '[ALERT]' | tail -5
      return 1
    fi
    sleep 0.1
  done
  echo "no answer from the HAProxy master within 30 s"
  return 1
}

# Kept until the running proxy has taken the new file, so that a load-time failure leaves the
# file as it was (a restart must not bring up a config the proxy refused).
PREVIOUS=".$FILE.previous"
if [[ -f "$DIR/$FILE" ]]; then cp -p "$DIR/$FILE" "$DIR/$PREVIOUS"; else rm -f "$DIR/$PREVIOUS"; fi
rm -rf "$DIR/.certs.previous"
if [[ -n "$CERTS" ]]; then
  if [[ -d "$DIR/certs" ]]; then mv "$DIR/certs" "$DIR/.certs.previous"; fi
  mv "$DIR/.certs.next" "$DIR/certs"
fi
mv -f "$DIR/$NEXT" "$DIR/$FILE"
sha=$(sha256sum "$DIR/$FILE" | cut -d' ' -f1)
# A load-time failure puts the config and the certificates back as they were.
restore_previous() {
  if [[ -f "$DIR/$PREVIOUS" ]]; then mv -f "$DIR/$PREVIOUS" "$DIR/$FILE"; fi
  if [[ -d "$DIR/.certs.previous" ]]; then rm -rf "$DIR/certs" && mv "$DIR/.certs.previous" "$DIR/certs"; fi
}

applied=written
if [[ "$(docker inspect -f '{{.State.Running}}' "$CONTAINER" 2>/dev/null || true)" == true ]]; then
  if [[ "$RELOAD" == signal ]]; then
    if ! out=$(haproxy_reload); then
      restore_previous
      die "$CONTAINER refused the new config at load time and keeps its current routes: $out"
    fi
    applied=reloaded
  elif [[ "$RELOAD" == api ]]; then
    # Caddy applies the new config gracefully (new routes for new requests; the old ones finish)
    # and rolls back to the running config if it fails to start.
    if ! out=$(docker exec "$CONTAINER" caddy reload --config "$MOUNT/$FILE" --address "$MMAGENT_ADMIN" 2>&1); then
      restore_previous
      die "$CONTAINER refused the new config at load time and keeps its current routes: $(printf '%s\n' "$out" | grep -v '"level":"info"' | tail -5)"
    fi
    applied=reloaded
  else
    docker restart "$CONTAINER" >/dev/null
    applied=restarted
  fi
fi
rm -f "$DIR/$PREVIOUS"
rm -rf "$DIR/.certs.previous"
# No certificates any more (tls off, or engine caddy): no private key stays behind.
if [[ -z "$CERTS" ]]; then rm -rf "$DIR/certs"; fi
printf '{"file":"%s","sha256":"%s","applied":"%s"}\n' "$DIR/$FILE" "$sha" "$applied"
