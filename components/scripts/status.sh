#!/usr/bin/env bash
# What the stack's containers are doing, read-only (`mmagent status`; the volumes come from
# storage.sh's `list`). Changes nothing on the host and takes no lock.
#
# Every parameter arrives as an environment variable (see hostScript.ts) and is re-validated here.
#
#   MMAGENT_CONTAINERS  space-separated container names
#
# stdout: one JSON object {"driver": the engine's storage driver, "dockerVersion",
# "containers": [`docker container inspect` of each that exists], "images": [`docker image
# inspect` of the images they run], "missing": [names with no container]}. The program reads
# the fields it needs (components/cli/status.ts), so the engine's own JSON passes unchanged.
set -euo pipefail
export LC_ALL=C

die() { printf 'mmagent status: %s\n' "$*" >&2; exit 1; }

NAME_RE='^[a-z][a-z0-9-]{0,30}[a-z0-9]$'
require_match() { # value regex description
  [[ "$1" =~ $2 ]] || die "invalid $3: '$(printf '%q' "$1" | cut -c1-80)'"
}

require_match "${MMAGENT_CONTAINERS:-}" '^[a-z0-9-]+( [a-z0-9-]+)*$' "MMAGENT_CONTAINERS (space-separated container names)"
names=()
read -r -a names <<<"$MMAGENT_CONTAINERS"
for n in "${names[@]}"; do require_match "$n" "$NAME_RE" "container name in MMAGENT_CONTAINERS"; done

command -v docker >/dev/null 2>&1 || die "docker is not installed on this host"
info=$(docker info -f '{{json .Driver}} {{json .ServerVersion}}' 2>/dev/null) \
  || die "Docker on this host does not answer (docker info failed): is dockerd running?"

containers=() images=() missing=()
for n in "${names[@]}"; do
  if c=$(docker container inspect -f '{{json .}}' -- "$n" 2>/dev/null); then
    containers+=("$c")
    id=$(docker container inspect -f '{{.Image}}' -- "$n")
    if i=$(docker image inspect -f '{{json .}}' -- "$id" 2>/dev/null); then images+=("$i"); fi
  else
    missing+=("\"$n\"")
  fi
done

join() { local IFS=,; printf '%s' "$*"; }
printf '{"driver":%s,"dockerVersion":%s,"containers":[%s],"images":[%s],"missing":[%s]}\n' \
  "${info%% *}" "${info#* }" "$(join "${containers[@]}")" "$(join "${images[@]}")" "$(join "${missing[@]}")"
