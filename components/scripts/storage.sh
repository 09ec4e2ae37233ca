#!/usr/bin/env bash
# Per-service storage on the host: create and tune volumes, take pre-change snapshots with
# retention, restore a service's volumes from one of them.
#
# Every parameter arrives as an environment variable (never interpolated into a command line by
# the caller) and is re-validated here against the same allow-lists the program uses.
#
#   MMAGENT_ACTION    detect | ensure | snapshot | restore | list
#   MMAGENT_BACKEND   auto | zfs | btrfs | dir
#   MMAGENT_ROOT      zfs: parent dataset (tank/mmagent); btrfs/dir: absolute path; auto: either
#
# auto is resolved here, on the host, before any action (resolve_backend): a root that names a
# dataset (no leading /) is ZFS; a path is Btrfs when the nearest existing ancestor of the root is
# on Btrfs (`stat -f -c %T`), plain directories otherwise. Every action reports the backend it
# used as "backend" in its JSON. With auto resolved to dir, `snapshot` is a no-op that reports
# {"snapshot":null,...} with a warning (the step is declared for hosts that can snapshot), and
# `restore` is refused (a requested rollback that silently did nothing would leave migrated data
# under the old image).
#   detect:   nothing else; reports {"requested","backend","root","fsType","probed"}
#   ensure:   MMAGENT_VOLUME, MMAGENT_ZFS_PROPERTIES ("k=v k=v"), MMAGENT_BTRFS_NOCOW (0|1),
#             MMAGENT_BTRFS_COMPRESSION ("" | zstd | lzo), MMAGENT_QUOTA_GIB ("" | number)
#   snapshot: MMAGENT_VOLUMES ("a b"), MMAGENT_SNAPSHOT, MMAGENT_KEEP, MMAGENT_CONTAINER ("" = none),
#             MMAGENT_STOP_TIMEOUT (seconds before SIGKILL, default 10), MMAGENT_NEXT_IMAGE,
#             MMAGENT_PROTECT ("" | snapshot name never to prune)
#   restore:  MMAGENT_VOLUMES, MMAGENT_SNAPSHOT, MMAGENT_CONTAINER, MMAGENT_STOP_TIMEOUT, MMAGENT_EXPECT_IMAGE
#   list:     MMAGENT_VOLUMES. Read-only (no lock, creates nothing; `mmagent status` and
#             `mmagent rollback` use it): per volume its path, used and quota bytes, the snapshot
#             it was last restored from, and every snapshot of this project with its metadata.
#
# Each pre-change snapshot records, besides the image reference the container ran, the image's
# ID (`.Image`, the config digest the engine runs) and its registry digest (`repo@sha256:…`, ""
# for an image built on the host), and the volume's used bytes at that moment (growth estimates).
# A restore refuses a configured image that is not the one the snapshot's data belongs to.
#
# stdout: one JSON object describing the result. Progress and warnings go to stderr.
set -euo pipefail
export LC_ALL=C

die() { printf 'mmagent storage: %s\n' "$*" >&2; exit 1; }
note() { printf 'mmagent storage: %s\n' "$*" >&2; }

NAME_RE='^[a-z][a-z0-9-]{0,30}[a-z0-9]$'
SNAP_RE='^mmagent-(pre|replaced)-[0-9a-z-]{4,40}$'
PATH_RE='^(/[A-Za-z0-9._@+][A-Za-z0-9._@+-]*)+$'
DATASET_RE='^[A-Za-z][A-Za-z0-9_.:-]*(/[A-Za-z0-9][A-Za-z0-9_.:-]*)*$'
IMAGE_RE='^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,511}$'

require_match() { # value regex description
  [[ "$1" =~ $2 ]] || die "invalid $3: '$(printf '%q' "$1" | cut -c1-80)'"
}

ACTION="${MMAGENT_ACTION:-}"
BACKEND="${MMAGENT_BACKEND:-}"
ROOT="${MMAGENT_ROOT:-}"
require_path_root() {
  require_match "$ROOT" "$PATH_RE" "MMAGENT_ROOT (absolute path)"
  [[ "$ROOT/" != *"/../"* && "$ROOT/" != *"/./"* ]] || die "MMAGENT_ROOT must not contain . or .. segments"
}
case "$BACKEND" in
  zfs) require_match "$ROOT" "$DATASET_RE" "MMAGENT_ROOT (zfs dataset)" ;;
  btrfs|dir) require_path_root ;;
  auto) if [[ "$ROOT" == /* ]]; then require_path_root; else require_match "$ROOT" "$DATASET_RE" "MMAGENT_ROOT (auto: a zfs dataset or an absolute path)"; fi ;;
  *) die "MMAGENT_BACKEND must be auto, zfs, btrfs or dir (got '$(printf '%q' "$BACKEND" | cut -c1-40)')" ;;
esac

# ---------------------------------------------------------------------------------------------
# auto: decide the backend from what the host has. Read-only: creates nothing.
REQUESTED="$BACKEND" FS_TYPE="" PROBED=""
resolve_backend() {
  [[ "$BACKEND" == auto ]] || return 0
  if [[ "$ROOT" != /* ]]; then
    local pool="${ROOT%%/*}"
    command -v zfs >/dev/null 2>&1 \
      || die "storage.root '$ROOT' names a ZFS dataset (backend auto), but this host has no zfs command: install zfsutils-linux, or give an absolute path"
    zfs list -H -o name "$pool" >/dev/null 2>&1 \
      || die "storage.root '$ROOT' names a ZFS dataset (backend auto), but this host has no pool '$pool' (see zpool list): create it, or give an absolute path"
    BACKEND=zfs FS_TYPE=zfs PROBED="$pool"
  else
    # The root may not exist yet (the first ensure creates it): ask about where it will be created.
    local probe="$ROOT"
    while [[ ! -e "$probe" ]]; do probe=$(dirname -- "$probe"); done
    FS_TYPE=$(stat -f -c %T -- "$probe")
    PROBED="$probe"
    if [[ "$FS_TYPE" == btrfs ]]; then BACKEND=btrfs; else BACKEND=dir; fi
    [[ "$FS_TYPE" != zfs ]] || note "warning: $probe is on ZFS, but a path root means plain directories: give the dataset name (e.g. tank/mmagent) for snapshots"
  fi
  note "backend auto: $ROOT is $BACKEND ($FS_TYPE at $PROBED)"
}
resolve_backend

# One storage operation at a time on a host: parallel pulumi steps must not interleave a
# stop/snapshot/start of one service with another's.
# detect and list only read, and take no lock (a status check must not wait for an upgrade).
if [[ "$ACTION" != detect && "$ACTION" != list ]]; then
  LOCK_FILE="/run/lock/mmagent-storage.lock"
  [[ -d /run/lock ]] || LOCK_FILE="/tmp/mmagent-storage.lock"
  exec 9>"$LOCK_FILE"
  flock 9
fi

json_str() { # minimal JSON string escaping for the values this script emits (validated names, paths, images)
  local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"
}

now_iso() { date -u +%Y-%m-%dT%H:%M:%S.%NZ | sed 's/\.\([0-9]\{3\}\)[0-9]*Z$/.\1Z/'; }

# ---------------------------------------------------------------------------------------------
# Paths per backend
live_path() { printf '%s/%s' "$ROOT" "$1"; }                       # btrfs/dir
snap_dir() { printf '%s/.snapshots/%s' "$ROOT" "$1"; }             # btrfs
dataset() { printf '%s/%s' "$ROOT" "$1"; }                         # zfs

# ---------------------------------------------------------------------------------------------
# ensure: create the volume if missing, apply the profile's tuning; idempotent.
ensure_volume() {
  local vol="$1" path
  require_match "$vol" "$NAME_RE" "MMAGENT_VOLUME"
  local nocow="${MMAGENT_BTRFS_NOCOW:-0}" compression="${MMAGENT_BTRFS_COMPRESSION:-}" quota="${MMAGENT_QUOTA_GIB:-}"
  [[ "$nocow" =~ ^[01]$ ]] || die "MMAGENT_BTRFS_NOCOW must be 0 or 1"
  [[ "$compression" =~ ^(|zstd|lzo)$ ]] || die "MMAGENT_BTRFS_COMPRESSION must be empty, zstd or lzo"
  [[ "$quota" =~ ^([0-9]+(\.[0-9]+)?)?$ ]] || die "MMAGENT_QUOTA_GIB must be a number"
  case "$BACKEND" in
    zfs)
      local ds props=() kv
      ds=$(dataset "$vol")
      # Only key=value words and single spaces, then split without globbing.
      [[ -z "${MMAGENT_ZFS_PROPERTIES:-}" ]] || require_match "$MMAGENT_ZFS_PROPERTIES" '^[a-z:]+=[A-Za-z0-9]+( [a-z:]+=[A-Za-z0-9]+)*$' "MMAGENT_ZFS_PROPERTIES"
      local kvs=(); read -r -a kvs <<<"${MMAGENT_ZFS_PROPERTIES:-}"
      for kv in "${kvs[@]}"; do
        [[ "$kv" =~ ^[a-z:]+=[A-Za-z0-9]+$ ]] || die "invalid ZFS property '$kv'"
        props+=("$kv")
      done
      [[ -n "$quota" ]] && props+=("quota=${quota}G")
      if ! zfs list -H -o name "$ds" >/dev/null 2>&1; then
        note "creating dataset $ds"
        local create_args=() p
        for p in "${props[@]}"; do create_args+=(-o "$p"); done
        zfs create -p "${create_args[@]}" "$ds"
      fi
      # Re-assert: a property changed by hand drifts back to the declared profile.
      ((${#props[@]})) && zfs set "${props[@]}" "$ds"
      path=$(zfs get -H -o value mountpoint "$ds")
      ;;
    btrfs)
      path=$(live_path "$vol")
      mkdir -p "$ROOT/.snapshots"
      if [[ ! -e "$path" ]]; then
        note "creating subvolume $path"
        btrfs subvolume create "$path" >/dev/null
      elif ! btrfs subvolume show "$path" >/dev/null 2>&1; then
        die "$path exists but is not a Btrfs subvolume: move it aside, then run again"
      fi
      mkdir -p "$(snap_dir "$vol")"
      if [[ "$nocow" == 1 ]] && ! lsattr -d "$path" | cut -d' ' -f1 | grep -q C; then
        [[ -z "$(ls -A "$path")" ]] || note "warning: $path already holds files; no-CoW applies only to files created from now on"
        chattr +C "$path"
      fi
      if [[ -n "$compression" ]]; then
        [[ "$(btrfs property get "$path" compression 2>/dev/null)" == "compression=$compression" ]] \
          || btrfs property set "$path" compression "$compression"
      fi
      if [[ -n "$quota" ]]; then
        btrfs quota enable "$ROOT" 2>/dev/null || true
        btrfs qgroup limit "${quota}G" "$path"
      fi
      ;;
    dir)
      path=$(live_path "$vol")
      mkdir -p "$path"
      ;;
  esac
  printf '{"volume":%s,"path":%s,"backend":%s}\n' "$(json_str "$vol")" "$(json_str "$path")" "$(json_str "$BACKEND")"
}

# ---------------------------------------------------------------------------------------------
# Containers: stop for a consistent snapshot/restore, start again as it was.
WAS_RUNNING=""
stop_container() {
  local c="$1"
  [[ -z "$c" ]] && return 0
  require_match "$c" "$NAME_RE" "MMAGENT_CONTAINER"
  command -v docker >/dev/null 2>&1 || { note "docker not found; not stopping $c"; return 0; }
  local grace="${MMAGENT_STOP_TIMEOUT:-10}"
  [[ "$grace" =~ ^[0-9]{1,4}$ ]] || die "MMAGENT_STOP_TIMEOUT must be a number of seconds (0-9999)"
  if [[ "$(docker inspect -f '{{.State.Running}}' -- "$c" 2>/dev/null || true)" == "true" ]]; then
    note "stopping $c for a consistent snapshot (up to ${grace}s before SIGKILL)"
    docker stop -t "$grace" -- "$c" >/dev/null
    WAS_RUNNING="$c"
  fi
}
start_again() {
  if [[ -n "$WAS_RUNNING" ]]; then
    note "starting $WAS_RUNNING again"
    docker start -- "$WAS_RUNNING" >/dev/null || note "warning: could not start $WAS_RUNNING"
    WAS_RUNNING=""
  fi
}
trap start_again EXIT

# What a container runs: IMG_REF (the reference it was created with), IMG_ID (`sha256:…`, the image
# the engine runs) and IMG_DIGEST (the registry digest of that image for the reference's
# repository, `repo@sha256:…`; "" when the image was built on the host and never pulled/pushed).
IMG_REF="" IMG_ID="" IMG_DIGEST=""
container_image() {
  IMG_REF="" IMG_ID="" IMG_DIGEST=""
  local c="$1" line
  [[ -z "$c" ]] && return 0
  command -v docker >/dev/null 2>&1 || return 0
  line=$(docker inspect -f '{{.Config.Image}} {{.Image}}' -- "$c" 2>/dev/null) || return 0
  IMG_REF=${line% *} IMG_ID=${line##* }
  IMG_DIGEST=$(repo_digest "$IMG_REF" "$IMG_ID")
}
familiar() { # docker.io/library/redis -> redis: the form RepoDigests use for Docker Hub
  local r=${1#docker.io/}; r=${r#index.docker.io/}; printf '%s' "${r#library/}"
}
repo_digest() { # reference image-id
  local ref=$1 repo d
  repo=${ref%%@*}
  [[ "${repo##*/}" == *:* ]] && repo=${repo%:*}
  repo=$(familiar "$repo")
  while IFS= read -r d; do
    [[ -n "$d" && "$(familiar "${d%@*}")" == "$repo" ]] && { printf '%s@%s' "$repo" "${d#*@}"; return 0; }
  done < <(docker image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' -- "$2" 2>/dev/null || true)
  return 0
}

# Used bytes of a volume, and its enforced quota in bytes ("" when none): ZFS `used`/`quota`,
# Btrfs the subvolume's qgroup (referenced, max) when quotas are on, else `du`. Btrfs accounts a
# write in its qgroups only when the transaction commits (every 30 s by default): a volume just
# written, or created after quotas were enabled, reads 0 until then, so the file system is synced
# first (a commit of what is already written; it changes no data).
USED_BYTES="" QUOTA_BYTES=""
volume_usage() { # vol
  USED_BYTES="" QUOTA_BYTES=""
  case "$BACKEND" in
    zfs)
      local ds; ds=$(dataset "$1")
      zfs list -H -o name "$ds" >/dev/null 2>&1 || return 0
      USED_BYTES=$(zfs get -Hp -o value used "$ds")
      QUOTA_BYTES=$(zfs get -Hp -o value quota "$ds")
      [[ "$QUOTA_BYTES" != 0 && "$QUOTA_BYTES" != "-" && "$QUOTA_BYTES" != none ]] || QUOTA_BYTES="" ;;
    btrfs|dir)
      local path line id; path=$(live_path "$1")
      [[ -d "$path" ]] || return 0
      [[ "$BACKEND" != btrfs ]] || btrfs filesystem sync -- "$path" >/dev/null 2>&1 || true
      if [[ "$BACKEND" == btrfs ]] && id=$(btrfs inspect-internal rootid -- "$path" 2>/dev/null) \
        && line=$(btrfs qgroup show -r --raw -- "$path" 2>/dev/null | awk -v q="0/$id" '$1 == q { print $2, $4 }') && [[ -n "$line" ]]; then
        USED_BYTES=${line% *} QUOTA_BYTES=${line#* }
        [[ "$QUOTA_BYTES" =~ ^[0-9]+$ ]] || QUOTA_BYTES=""
      else
        USED_BYTES=$(du -s -x -B1 -- "$path" | cut -f1)
      fi ;;
  esac
}

parse_volumes() {
  VOLUMES=()
  local vol
  # Only names and single spaces, then split without globbing (an unquoted expansion would expand `*`).
  require_match "${MMAGENT_VOLUMES:-}" '^[a-z0-9-]+( [a-z0-9-]+)*$' "MMAGENT_VOLUMES (space-separated volume names)"
  local names=(); read -r -a names <<<"$MMAGENT_VOLUMES"
  for vol in "${names[@]}"; do
    require_match "$vol" "$NAME_RE" "volume name in MMAGENT_VOLUMES"
    VOLUMES+=("$vol")
  done
}

# Metadata of a Btrfs snapshot lives beside it, `<name>.json`.
write_meta() { # file created_iso created_ns image next_image image_id image_digest bytes
  local tmp="$1.tmp"
  printf '{"createdAt":%s,"createdNs":%s,"image":%s,"nextImage":%s,"imageId":%s,"imageDigest":%s,"bytes":%s}\n' \
    "$(json_str "$2")" "$3" "$(json_str "$4")" "$(json_str "$5")" "$(json_str "$6")" "$(json_str "$7")" "${8:-null}" >"$tmp"
  mv -f "$tmp" "$1"
}
meta_field() { # file field
  sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p" "$1" 2>/dev/null | head -n1
}

# ---------------------------------------------------------------------------------------------
# snapshot: one read-only snapshot of each of a service's volumes, same name, then retention.
take_snapshots() {
  parse_volumes
  local name="${MMAGENT_SNAPSHOT:-}" keep="${MMAGENT_KEEP:-}" container="${MMAGENT_CONTAINER:-}"
  local next="${MMAGENT_NEXT_IMAGE:-}" protect="${MMAGENT_PROTECT:-}"
  require_match "$name" "$SNAP_RE" "MMAGENT_SNAPSHOT"
  [[ "$keep" =~ ^[1-9][0-9]{0,3}$ ]] || die "MMAGENT_KEEP must be a number from 1 to 9999"
  [[ -z "$next" ]] || require_match "$next" "$IMAGE_RE" "MMAGENT_NEXT_IMAGE"
  [[ -z "$container" ]] || require_match "$container" "$NAME_RE" "MMAGENT_CONTAINER"
  [[ -z "$protect" ]] || require_match "$protect" "$SNAP_RE" "MMAGENT_PROTECT"
  if [[ "$BACKEND" == dir && "$REQUESTED" == auto ]]; then
    note "warning: storage backend auto resolved to dir on this host ($FS_TYPE at $PROBED): no snapshot of ${VOLUMES[*]} is taken before this change; use a Btrfs path or a ZFS dataset for data you keep"
    printf '{"snapshot":null,"backend":"dir","volumes":{}}\n'
    return 0
  fi
  [[ "$BACKEND" == dir ]] && die "the dir backend takes no snapshots"

  local missing=() vol
  for vol in "${VOLUMES[@]}"; do snapshot_exists "$vol" "$name" || missing+=("$vol"); done
  local created_iso created_ns
  container_image "$container"
  if ((${#missing[@]})); then
    # Only a snapshot that is really new stops the service; a re-run of a finished one does not.
    stop_container "$container"
    # Stamped once the service is stopped: the moment the data is consistent.
    created_iso=$(now_iso); created_ns=$(date +%s%N)
    for vol in "${missing[@]}"; do make_snapshot "$vol" "$name" "$created_iso" "$created_ns" "$next"; done
    start_again
  fi
  local out="" bytes="" first=1 ref
  for vol in "${VOLUMES[@]}"; do
    ref=$(snapshot_ref "$vol" "$name")
    prune "$vol" "$keep" "$name" "$protect"
    read_meta "$vol" "$name"
    [[ $first == 1 ]] || { out+=","; bytes+=","; }
    out+="$(json_str "$vol"):$(json_str "$ref")"; bytes+="$(json_str "$vol"):$(json_num "$META_BYTES")"; first=0
  done
  # Report what the snapshot holds (from its metadata, so a re-run reports the original).
  read_meta "${VOLUMES[0]}" "$name"
  printf '{"snapshot":%s,"createdAt":%s,"image":%s,"imageId":%s,"imageDigest":%s,"nextImage":%s,"volumes":{%s},"bytes":{%s},"backend":%s}\n' \
    "$(json_str "$name")" "$(json_str "$META_CREATED")" "$(json_str "$META_IMAGE")" "$(json_str "$META_ID")" "$(json_str "$META_DIGEST")" \
    "$(json_str "$META_NEXT")" "$out" "$bytes" "$(json_str "$BACKEND")"
}

snapshot_exists() { # vol name
  case "$BACKEND" in
    btrfs) [[ -d "$(snap_dir "$1")/$2" && -f "$(snap_dir "$1")/$2.json" ]] ;;
    zfs) zfs list -H -o name -t snapshot "$(dataset "$1")@$2" >/dev/null 2>&1 ;;
  esac
}
snapshot_ref() {
  case "$BACKEND" in
    btrfs) printf '%s/%s' "$(snap_dir "$1")" "$2" ;;
    zfs) printf '%s@%s' "$(dataset "$1")" "$2" ;;
  esac
}

make_snapshot() { # vol name created_iso created_ns next (the image: container_image's IMG_*)
  local vol="$1" name="$2"
  volume_usage "$vol"
  case "$BACKEND" in
    btrfs)
      local dir target
      dir=$(snap_dir "$vol"); target="$dir/$name"
      mkdir -p "$dir"
      # A run killed after the snapshot but before its metadata leaves the snapshot: keep it.
      [[ -d "$target" ]] || btrfs subvolume snapshot -r "$(live_path "$vol")" "$target" >/dev/null
      write_meta "$target.json" "$3" "$4" "$IMG_REF" "$5" "$IMG_ID" "$IMG_DIGEST" "$USED_BYTES"
      note "snapshot $target"
      ;;
    zfs)
      zfs snapshot -o "mmagent:created=$3" -o "mmagent:image=${IMG_REF:--}" -o "mmagent:next-image=${5:--}" \
        -o "mmagent:image-id=${IMG_ID:--}" -o "mmagent:image-digest=${IMG_DIGEST:--}" -o "mmagent:bytes=${USED_BYTES:--}" "$(dataset "$vol")@$name"
      note "snapshot $(dataset "$vol")@$name"
      ;;
  esac
}

META_CREATED="" META_IMAGE="" META_NEXT="" META_ID="" META_DIGEST="" META_BYTES=""
read_meta() { # vol name
  case "$BACKEND" in
    btrfs)
      local f; f="$(snap_dir "$1")/$2.json"
      META_CREATED=$(meta_field "$f" createdAt); META_IMAGE=$(meta_field "$f" image); META_NEXT=$(meta_field "$f" nextImage)
      META_ID=$(meta_field "$f" imageId); META_DIGEST=$(meta_field "$f" imageDigest); META_BYTES=$(meta_field "$f" bytes) ;;
    zfs)
      local ref p v; ref="$(dataset "$1")@$2"
      META_CREATED="" META_IMAGE="" META_NEXT="" META_ID="" META_DIGEST="" META_BYTES=""
      # One call; "-" is how ZFS shows an unset user property (snapshots older than a field).
      while IFS=$'\t' read -r p v; do
        [[ "$v" == "-" ]] && v=""
        case "$p" in
          mmagent:created) META_CREATED=$v ;; mmagent:image) META_IMAGE=$v ;; mmagent:next-image) META_NEXT=$v ;;
          mmagent:image-id) META_ID=$v ;; mmagent:image-digest) META_DIGEST=$v ;; mmagent:bytes) META_BYTES=$v ;;
        esac
      done < <(zfs get -H -o property,value mmagent:created,mmagent:image,mmagent:next-image,mmagent:image-id,mmagent:image-digest,mmagent:bytes "$ref") ;;
  esac
  [[ "$META_BYTES" =~ ^[0-9]+$ ]] || META_BYTES=""
}
json_num() { if [[ "$1" =~ ^[0-9]+$ ]]; then printf '%s' "$1"; else printf 'null'; fi; }

# Keep the newest $keep snapshots this project made (name prefix mmagent-); never touch others,
# never the one just taken, never the protected one (a pending restoreFrom).
# This project's snapshots of a volume (name prefix mmagent-), oldest first, one per line.
snapshot_names() { # vol
  local vol="$1" n
  case "$BACKEND" in
    btrfs)
      local dir f; dir=$(snap_dir "$vol")
      # By the nanosecond timestamp recorded in the metadata.
      for f in "$dir"/mmagent-*.json; do
        [[ -e "$f" ]] || continue
        n=$(basename "$f" .json)
        [[ "$n" =~ $SNAP_RE && -d "$dir/$n" ]] || continue
        printf '%s %s\n' "$(meta_field "$f" createdNs)" "$n"
      done | sort -n | cut -d' ' -f2
      ;;
    zfs)
      zfs list -H -o name -t snapshot -s createtxg -d 1 "$(dataset "$vol")" 2>/dev/null | while IFS= read -r n; do
        n=${n#*@}
        if [[ "$n" =~ $SNAP_RE ]]; then printf '%s\n' "$n"; fi
      done
      ;;
  esac
}

prune() { # vol keep current protect
  local vol="$1" keep="$2" current="$3" protect="$4" names=() n
  while IFS= read -r n; do names+=("$n"); done < <(snapshot_names "$vol")
  local excess=$(( ${#names[@]} - keep ))
  local i
  for ((i = 0; i < ${#names[@]} && excess > 0; i++)); do
    n="${names[$i]}"
    [[ "$n" == "$current" || "$n" == "$protect" ]] && continue
    note "retention: removing $vol@$n"
    case "$BACKEND" in
      btrfs) btrfs subvolume delete "$(snap_dir "$vol")/$n" >/dev/null; rm -f "$(snap_dir "$vol")/$n.json" ;;
      zfs) zfs destroy "$(dataset "$vol")@$n" ;;
    esac
    excess=$((excess - 1))
  done
}

# Whether reference $1 names the image a container created from $2 (ID $3) runs.
same_image() { # expect ref id
  [[ "$1" == "$2" ]] && return 0
  [[ -n "$3" ]] || return 1
  [[ "$(docker image inspect -f '{{.Id}}' -- "$1" 2>/dev/null || true)" == "$3" ]]
}

# The configured image must be the one the snapshot's data belongs to: the same reference or its
# recorded registry digest, and, when the snapshot recorded the image ID and the reference is on
# this host, the same image (a tag moved since is refused). Snapshots from before the ID was
# recorded are checked by reference only.
check_restore_image() { # expect name
  local expect="$1" name="$2" want
  [[ -n "$META_IMAGE" || -n "$META_ID" ]] || return 0 # no container ran before the snapshot
  want=${META_DIGEST:-$META_IMAGE}
  if [[ "$expect" != "$META_IMAGE" && ! ( -n "$META_DIGEST" && "$expect" == *"@${META_DIGEST#*@}" ) ]]; then
    die "snapshot $name holds data of image $META_IMAGE${META_DIGEST:+ ($META_DIGEST)}, but the service is configured with $expect: set the service's image to $want so data and image roll back together"
  fi
  [[ -n "$META_ID" ]] && command -v docker >/dev/null 2>&1 || return 0
  local now; now=$(docker image inspect -f '{{.Id}}' -- "$expect" 2>/dev/null || true)
  if [[ -z "$now" ]]; then
    [[ -n "$META_DIGEST" && "$expect" == *"@${META_DIGEST#*@}" ]] \
      || note "warning: $expect is not on this host yet, so its image ID cannot be compared with the snapshot's ($META_ID)"
  elif [[ "$now" != "$META_ID" ]]; then
    die "snapshot $name holds data of image $META_ID, but $expect is now $now on this host (the tag was moved since the snapshot): set the service's image to ${META_DIGEST:-the image with ID $META_ID}"
  fi
}

# ---------------------------------------------------------------------------------------------
# restore: put each volume back to the snapshot; the state being replaced is kept as a
# `mmagent-replaced-*` snapshot, so a restore is itself undoable.
restore_snapshots() {
  parse_volumes
  local name="${MMAGENT_SNAPSHOT:-}" container="${MMAGENT_CONTAINER:-}" expect="${MMAGENT_EXPECT_IMAGE:-}"
  require_match "$name" "$SNAP_RE" "MMAGENT_SNAPSHOT"
  [[ -z "$expect" ]] || require_match "$expect" "$IMAGE_RE" "MMAGENT_EXPECT_IMAGE"
  [[ -z "$container" ]] || require_match "$container" "$NAME_RE" "MMAGENT_CONTAINER"
  [[ "$BACKEND" == dir && "$REQUESTED" == auto ]] \
    && die "storage backend auto resolved to dir on this host ($FS_TYPE at $PROBED), which takes no snapshots, so there is nothing to restore: remove restoreFrom"
  [[ "$BACKEND" == dir ]] && die "the dir backend takes no snapshots, so there is nothing to restore"
  local vol
  for vol in "${VOLUMES[@]}"; do
    snapshot_exists "$vol" "$name" || die "snapshot $name of volume $vol does not exist; list them with: pulumi stack output snapshots"
  done
  read_meta "${VOLUMES[0]}" "$name"
  [[ -z "$expect" ]] || check_restore_image "$expect" "$name"
  local stamp; stamp="$(date -u +%Y%m%dt%H%M%S)-$(printf '%04x' $((RANDOM % 65536)))"
  local aside="mmagent-replaced-$stamp" image created_iso created_ns
  container_image "$container"; image=$IMG_REF
  created_iso=$(now_iso); created_ns=$(date +%s%N)
  stop_container "$container"
  for vol in "${VOLUMES[@]}"; do
    case "$BACKEND" in
      btrfs)
        local live dir; live=$(live_path "$vol"); dir=$(snap_dir "$vol")
        if [[ -e "$live" ]]; then
          volume_usage "$vol"
          # Move the live subvolume aside (a rename, instant) and mark it read-only.
          mv -- "$live" "$dir/$aside"
          btrfs property set -ts "$dir/$aside" ro true
          write_meta "$dir/$aside.json" "$created_iso" "$created_ns" "$image" "" "$IMG_ID" "$IMG_DIGEST" "$USED_BYTES"
        fi
        btrfs subvolume snapshot "$dir/$name" "$live" >/dev/null
        # Beside the volume's snapshot folder, not in it: that folder holds only snapshots and their metadata.
        printf '%s\n' "$name" >"$dir.restored-from.tmp" && mv -f "$dir.restored-from.tmp" "$dir.restored-from"
        ;;
      zfs)
        local ds parent; ds=$(dataset "$vol"); parent="${ds%/*}"
        # Keep the current state, then clone the chosen snapshot into the live name and promote
        # it; the replaced dataset stays as a clone under <parent>/.replaced (nothing is destroyed).
        volume_usage "$vol"
        zfs snapshot -o "mmagent:created=$created_iso" -o "mmagent:image=${image:--}" -o "mmagent:image-id=${IMG_ID:--}" \
          -o "mmagent:image-digest=${IMG_DIGEST:--}" -o "mmagent:bytes=${USED_BYTES:--}" "$ds@$aside"
        zfs create -p "$parent/mmagent-replaced"
        zfs rename "$ds" "$parent/mmagent-replaced/$vol-$stamp"
        zfs clone "$parent/mmagent-replaced/$vol-$stamp@$name" "$ds"
        zfs promote "$ds"
        # A clone inherits from its parent, not its origin: carry the profile's tuning over.
        local prop val
        while IFS=$'\t' read -r prop val; do
          [[ "$prop" == mountpoint || "$prop" == mmagent:restored-from ]] || zfs set "$prop=$val" "$ds"
        done < <(zfs get -H -o property,value -s local all "$parent/mmagent-replaced/$vol-$stamp")
        zfs set "mmagent:restored-from=$name" "$ds"
        ;;
    esac
    note "restored $vol from $name (previous state kept as $aside)"
  done
  # Start the container again only if it runs the image the restored data belongs to. Another
  # image (the upgrade being rolled back) would migrate the restored data again on start; Pulumi
  # replaces that container with the configured image right after this step.
  if [[ -n "$WAS_RUNNING" && -n "$expect" ]] && ! same_image "$expect" "$image" "$IMG_ID"; then
    note "leaving $container stopped: it runs $image, the restored data belongs to $expect"
    WAS_RUNNING=""
  fi
  start_again
  printf '{"restored":%s,"replacedBy":%s,"image":%s,"backend":%s}\n' "$(json_str "$name")" "$(json_str "$aside")" "$(json_str "$META_IMAGE")" "$(json_str "$BACKEND")"
}

# ---------------------------------------------------------------------------------------------
# list: what is on the host, read-only.
restored_from() { # vol
  case "$BACKEND" in
    btrfs) local f; f="$(snap_dir "$1").restored-from"; if [[ -f "$f" ]]; then head -n1 -- "$f"; fi ;;
    zfs) local v; v=$(zfs get -H -o value mmagent:restored-from "$(dataset "$1")" 2>/dev/null || true); if [[ "$v" != "-" ]]; then printf '%s' "$v"; fi ;;
  esac
}
list_volumes() {
  parse_volumes
  local out="" first=1 vol path exists snaps n restored
  for vol in "${VOLUMES[@]}"; do
    exists=false
    case "$BACKEND" in
      zfs) path=$(dataset "$vol"); if zfs list -H -o name "$path" >/dev/null 2>&1; then exists=true; path=$(zfs get -H -o value mountpoint "$path"); fi ;;
      *) path=$(live_path "$vol"); if [[ -d "$path" ]]; then exists=true; fi ;;
    esac
    volume_usage "$vol"
    snaps=""
    if [[ "$BACKEND" != dir ]]; then
      while IFS= read -r n; do
        read_meta "$vol" "$n"
        snaps+="${snaps:+,}{\"name\":$(json_str "$n"),\"createdAt\":$(json_str "$META_CREATED"),\"image\":$(json_str "$META_IMAGE"),\"imageId\":$(json_str "$META_ID"),\"imageDigest\":$(json_str "$META_DIGEST"),\"nextImage\":$(json_str "$META_NEXT"),\"bytes\":$(json_num "$META_BYTES")}"
      done < <(snapshot_names "$vol")
    fi
    restored=$(restored_from "$vol")
    [[ $first == 1 ]] || out+=","
    first=0
    out+="$(json_str "$vol"):{\"path\":$(json_str "$path"),\"exists\":$exists,\"usedBytes\":$(json_num "$USED_BYTES"),\"quotaBytes\":$(json_num "$QUOTA_BYTES"),\"restoredFrom\":$(json_str "$restored"),\"snapshots\":[$snaps]}"
  done
  printf '{"requested":%s,"backend":%s,"root":%s,"volumes":{%s}}\n' "$(json_str "$REQUESTED")" "$(json_str "$BACKEND")" "$(json_str "$ROOT")" "$out"
}

case "$ACTION" in
  detect)
    printf '{"requested":%s,"backend":%s,"root":%s,"fsType":%s,"probed":%s}\n' \
      "$(json_str "$REQUESTED")" "$(json_str "$BACKEND")" "$(json_str "$ROOT")" "$(json_str "$FS_TYPE")" "$(json_str "$PROBED")" ;;
  ensure) ensure_volume "${MMAGENT_VOLUME:-}" ;;
  snapshot) take_snapshots ;;
  restore) restore_snapshots ;;
  list) list_volumes ;;
  *) die "MMAGENT_ACTION must be detect, ensure, snapshot, restore or list" ;;
esac
