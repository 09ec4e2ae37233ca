#!/usr/bin/env bash
# Removes what an earlier test run left on this machine when it was killed (SIGKILL, a lost CI
# runner, a closed terminal) before its own cleanup ran. Called by scripts/test.sh before jest and
# by `scripts/test-host.sh up`; safe to run by hand at any time.
#
#   scripts/reap-test-leftovers.sh             remove leftovers; one line on stdout per thing removed
#   scripts/reap-test-leftovers.sh --dry-run   print "would remove ..." lines, change nothing
#   scripts/reap-test-leftovers.sh --only TAG  only things whose name contains TAG (8+ letters or
#                                              digits): what test/real/reapLeftovers.test.ts created
#
# Found by the project's own test prefixes only, never anything else on the machine:
#   - Docker containers, networks, volumes named mmtest-*, mmtest_*, mmbench-*, mmbench_*
#   - the remote test host (scripts/remote-test-host.sh): network namespaces and links mmagent-rh*,
#     users mmagent-rh-*, /etc/sudoers.d/mmagent-rh-*, when no sshd of it is alive
#   - the users mmagent-t-* and /etc/sudoers.d/mmagent-test-* of test/real/sudoEscalation.test.ts
#   - mounts whose mount point is under /tmp/mmagent-* (lazily unmounted when busy)
#   - loop devices whose backing file is under /tmp/mmagent-* and that nothing mounts any more
#   - /tmp/mmagent-* files and folders (and $TMPDIR/mmagent-* where TMPDIR is set), except:
#     the test-host state dir of the caller ($MMAGENT_TEST_STATE), a state dir whose dockerd or
#     sshd (dockerd.pid, remote-host/sshd.pid) is alive or whose pid file cannot be read, anything
#     a live process has open or as its working or root directory, anything with a mount or an
#     attached loop device still inside it, a host-script file (/tmp/mmagent-host.*) younger than
#     a minute while a host script runs, and bench/debian-compose.sh's cache (mmagent-compose-*)
#   - client folders the program wrote for test stacks: ~/.mmagent/ssh/*.mmtest-*
#
# A live test run is never touched: while a process of this project's tests runs (jest,
# scripts/test.sh, scripts/test-host.sh, scripts/remote-test-host.sh, bench/*.sh, .ci/run; found
# by its command line and checked to belong to a checkout of this project), other than the
# caller and its parents, nothing is removed. There is no pid file that a killed run could leave
# stale. With --only the check is not needed (nothing of another run carries the caller's tag).
set -euo pipefail
shopt -s nullglob

DRY_RUN=0
ONLY=""
usage() { sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --only)
      ONLY=${2:-}
      [[ "$ONLY" =~ ^[A-Za-z0-9]{8,}$ ]] || { echo "reap-test-leftovers: --only needs a tag of 8 or more letters or digits" >&2; exit 2; }
      shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done

note() { printf '[reap] %s\n' "$*" >&2; }

DOCKER_NAME_RE='^(mmtest|mmbench)[-_]'
USER_RE='^(mmagent-rh-|mmagent-t-)'
RH_PREFIX="mmagent-rh"
HOST_SCRIPT_PREFIX="mmagent-host."

# Where the tests' temp files are: /tmp (the scripts' fixed names) and os.tmpdir() where TMPDIR
# points elsewhere, if that is a temp folder (sticky like /tmp, or named tmp or temp).
TMP_ROOTS=(/tmp)
if [[ -n "${TMPDIR:-}" ]]; then
  tmpdir=$(realpath -e -- "$TMPDIR" 2>/dev/null || true)
  tmpname=${tmpdir##*/}
  if [[ -d "$tmpdir" && "$tmpdir" != /tmp && "$tmpdir" != / ]] && [[ -k "$tmpdir" || "${tmpname,,}" == tmp || "${tmpname,,}" == temp ]]; then
    TMP_ROOTS+=("$tmpdir")
  fi
fi

# True for a path directly or deeper under <root>/mmagent-*, for one of the roots.
under_prefix() {
  local p=$1 root
  for root in "${TMP_ROOTS[@]}"; do
    if [[ "$p" == "$root"/mmagent-* ]]; then return 0; fi
  done
  return 1
}

# With --only: the name must contain the tag.
tagged() { [[ -z "$ONLY" || "$1" == *"$ONLY"* ]]; }

REMOVED=0
# reap WHAT COMMAND...: runs COMMAND (not in a dry run); prints one line for WHAT on success.
reap() {
  local what=$1
  shift
  if ((DRY_RUN)); then
    printf 'would remove %s\n' "$what"
    return 0
  fi
  if "$@" >/dev/null 2>&1; then
    printf 'removed %s\n' "$what"
    REMOVED=$((REMOVED + 1))
  else
    note "could not remove $what (kept)"
  fi
}

# --- processes ----------------------------------------------------------------------------------

# Running and not a zombie.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  [[ "${stat##*) }" != Z* ]]
}

ppid_of() {
  local stat rest
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  rest=${stat##*) }
  read -r _ ppid _ <<<"$rest"
  printf '%s' "$ppid"
}

# This process and its parents: the caller (scripts/test.sh, jest, test-host.sh) is not "another run".
declare -A SELF=()
pid=$$
while [[ "$pid" =~ ^[0-9]+$ ]] && ((pid > 0)) && [[ -z "${SELF[$pid]:-}" ]]; do
  SELF[$pid]=1
  pid=$(ppid_of "$pid") || break
done

# True when dir or one of its parents holds this project's package.json.
in_project() {
  local d=$1
  while [[ -n "$d" ]]; do
    if [[ -f "$d/package.json" ]] && grep -qE '"name": *"(mmagent-infra|@mmagent/components)"' "$d/package.json" 2>/dev/null; then return 0; fi
    [[ "$d" == / ]] && break
    d=$(dirname -- "$d")
  done
  return 1
}

# Prints "pid: command" when pid is a process of a test run of this project.
test_process() {
  local pid=$1 arg base kind="" ref="" cwd
  local -a args=()
  mapfile -t -d '' args 2>/dev/null <"/proc/$pid/cmdline" || return 1
  ((${#args[@]})) || return 1
  for arg in "${args[@]}"; do
    base=${arg##*/}
    if [[ "$base" == jest || "$base" == jest.js || "$arg" == */jest-worker/* || "$arg" == */jest-cli/* ]]; then
      kind=jest
      break
    fi
    if [[ "$arg" =~ (^|/)(scripts/(test|test-host|remote-test-host)\.sh|bench/[^/]+\.sh|\.ci/run)$ ]]; then
      kind=script
      ref=$arg
      break
    fi
  done
  [[ -n "$kind" ]] || return 1
  # Unknown working directory: count it (when unsure, keep).
  if cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null); then
    if [[ "$kind" == script ]]; then
      [[ "$ref" == /* ]] || ref="$cwd/$ref"
      in_project "$(dirname -- "$ref")" || in_project "$cwd" || return 1
    else
      in_project "$cwd" || return 1
    fi
  fi
  alive "$pid" || return 1
  printf '%s: %s\n' "$pid" "${args[*]}"
}

if [[ -z "$ONLY" ]]; then
  live=()
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [[ -n "${SELF[$pid]:-}" ]] && continue
    if line=$(test_process "$pid"); then live+=("$line"); fi
  done
  if ((${#live[@]})); then
    for line in "${live[@]}"; do note "live test run: pid ${line:0:200}"; done
    note "another test run is live: nothing removed"
    exit 0
  fi
fi

# Paths under <root>/mmagent-* that a live process has open, or as its working or root directory.
IN_USE=()
while IFS= read -r line; do
  target=${line#*$'\t'}
  target=${target% (deleted)}
  if under_prefix "$target"; then IN_USE+=("$target"); fi
done < <(find /proc/[0-9]*/cwd /proc/[0-9]*/root /proc/[0-9]*/fd -maxdepth 1 -type l -printf '%p\t%l\n' 2>/dev/null || true)

in_use() {
  local p=$1 u
  for u in "${IN_USE[@]}"; do
    if [[ "$u" == "$p" || "$u" == "$p"/* ]]; then return 0; fi
  done
  return 1
}

# True while any process runs the `create` command of components/hostScript.ts (its command line
# names the mktemp template); the pattern is bracketed so that grep does not find itself.
host_script_running() {
  grep -qsE 'mktemp /tmp/mmagent-host[.]X' /proc/[0-9]*/cmdline
}

# True when a live process's command line contains the string. The pattern reaches grep through a
# file, so grep's own command line does not match it.
cmdline_mentions() {
  grep -qsF -f <(printf '%s\n' "$1") /proc/[0-9]*/cmdline
}

# True while an sshd of the remote test host runs (started with -f <state>/remote-host/sshd_config).
remote_sshd_running() {
  grep -qsE 'remote-host/sshd[_]config' /proc/[0-9]*/cmdline
}

# A pid file's process: "alive", "dead", or "unknown" (unreadable or not a number).
pid_file_state() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || { echo unknown; return; }
  pid=${pid//[[:space:]]/}
  if [[ ! "$pid" =~ ^[0-9]+$ ]]; then echo unknown; elif alive "$pid"; then echo alive; else echo dead; fi
}

IS_ROOT=0
[[ "$(id -u)" == 0 ]] && IS_ROOT=1
if ((!IS_ROOT)); then note "not root: mounts, loop devices, users and network namespaces are left alone"; fi

# --- Docker: containers first (they hold networks, volumes and mounts) ----------------------------

if command -v docker >/dev/null && timeout 20 docker info >/dev/null 2>&1; then
  mapfile -t names < <(docker ps -a --format '{{.Names}}')
  for name in "${names[@]}"; do
    if [[ "$name" =~ $DOCKER_NAME_RE ]] && tagged "$name"; then reap "container $name" docker rm -f -- "$name"; fi
  done
  mapfile -t names < <(docker network ls --format '{{.Name}}')
  for name in "${names[@]}"; do
    if [[ "$name" =~ $DOCKER_NAME_RE ]] && tagged "$name"; then reap "network $name" docker network rm -- "$name"; fi
  done
  mapfile -t names < <(docker volume ls --format '{{.Name}}')
  for name in "${names[@]}"; do
    if [[ "$name" =~ $DOCKER_NAME_RE ]] && tagged "$name"; then reap "volume $name" docker volume rm -- "$name"; fi
  done
else
  note "no Docker engine answers: containers, networks and volumes are left alone"
fi

# --- the remote test host, test users and sudoers files --------------------------------------------

kill_pids() {
  local p
  for p in "$@"; do
    if [[ "$p" =~ ^[0-9]+$ ]]; then kill -9 "$p" 2>/dev/null || true; fi
  done
}

# State dirs of the test hosts: <root>/mmagent-* with a dockerd or remote-host in them, and the caller's.
STATE_DIRS=()
for root in "${TMP_ROOTS[@]}"; do
  for d in "$root"/mmagent-*; do
    if [[ -d "$d" && ! -L "$d" ]] && [[ -e "$d/dockerd.pid" || -e "$d/dockerd.log" || -d "$d/remote-host" ]]; then STATE_DIRS+=("$d"); fi
  done
done
CALLER_STATE=""
if [[ -n "${MMAGENT_TEST_STATE:-}" && -d "$MMAGENT_TEST_STATE" ]]; then
  CALLER_STATE=$(realpath -- "$MMAGENT_TEST_STATE")
  STATE_DIRS+=("$CALLER_STATE")
fi

REMOTE_LIVE=0
if remote_sshd_running; then REMOTE_LIVE=1; fi
for d in "${STATE_DIRS[@]}"; do
  if [[ -e "$d/remote-host/sshd.pid" && "$(pid_file_state "$d/remote-host/sshd.pid")" != dead ]]; then REMOTE_LIVE=1; fi
done

if ((IS_ROOT)); then
  # A namespace is live while its own sshd runs in it; one without is what a killed run left.
  mapfile -t names < <(ip netns list 2>/dev/null | awk '{print $1}')
  for ns in "${names[@]}"; do
    if [[ "$ns" != "$RH_PREFIX"* ]] || ! tagged "$ns"; then continue; fi
    ns_live=0
    mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null || true)
    for p in "${pids[@]}"; do
      if grep -qsE 'sshd[_]config' "/proc/$p/cmdline"; then ns_live=1; fi
    done
    if ((ns_live)); then
      note "kept netns $ns (its sshd runs)"
      continue
    fi
    # Sessions and children of a killed run would keep the namespace alive.
    if ((!DRY_RUN)); then kill_pids "${pids[@]}"; fi
    reap "netns $ns" ip netns del "$ns"
  done

  if ((REMOTE_LIVE)) && [[ -z "$ONLY" ]]; then
    note "the remote test host's sshd runs: its links, users and sudoers file are kept"
  else
    mapfile -t names < <(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1)
    for link in "${names[@]}"; do
      if [[ "$link" == "$RH_PREFIX"* ]] && tagged "$link"; then reap "link $link" ip link del "$link"; fi
    done
  fi

  mapfile -t names < <(getent passwd | cut -d: -f1)
  for user in "${names[@]}"; do
    if [[ ! "$user" =~ $USER_RE ]] || ! tagged "$user"; then continue; fi
    if [[ "$user" == "$RH_PREFIX"-* ]] && ((REMOTE_LIVE)) && [[ -z "$ONLY" ]]; then continue; fi
    if ((DRY_RUN)); then
      printf 'would remove user %s\n' "$user"
      continue
    fi
    # Processes of a killed session (userdel refuses a logged-in user).
    mapfile -t pids < <(ps -o pid= -u "$user" 2>/dev/null | tr -d ' ' || true)
    kill_pids "${pids[@]}"
    userdel -r "$user" >/dev/null 2>&1 || userdel -f -r "$user" >/dev/null 2>&1 || userdel -f "$user" >/dev/null 2>&1 || true
    if getent passwd "$user" >/dev/null; then note "could not remove user $user (kept)"; else
      printf 'removed user %s\n' "$user"
      REMOVED=$((REMOVED + 1))
    fi
  done

  for f in /etc/sudoers.d/"$RH_PREFIX"-* /etc/sudoers.d/mmagent-test-*; do
    tagged "${f##*/}" || continue
    if [[ "${f##*/}" == "$RH_PREFIX"-* ]] && ((REMOTE_LIVE)) && [[ -z "$ONLY" ]]; then continue; fi
    reap "$f" rm -f -- "$f"
  done
fi

# The remote-host folder of a state dir under the prefix that is kept (its dockerd runs) but whose
# sshd is gone.
for d in "${STATE_DIRS[@]}"; do
  rh="$d/remote-host"
  if [[ ! -d "$rh" || -L "$rh" ]] || ! under_prefix "$d" || ! tagged "$d"; then continue; fi
  if [[ -e "$rh/sshd.pid" && "$(pid_file_state "$rh/sshd.pid")" != dead ]]; then continue; fi
  if cmdline_mentions "$rh/sshd_config" || in_use "$rh"; then continue; fi
  reap "$rh" rm -rf --one-file-system -- "$rh"
done

# --- mounts, then loop devices -------------------------------------------------------------------

# Mount points as the kernel writes them (\040 for a space, and so on), decoded.
unescape() {
  local s=$1 out="" ch
  while [[ "$s" =~ ^([^\\]*)\\([0-7]{3})(.*)$ ]]; do
    # shellcheck disable=SC2059 # the format is the octal escape itself, e.g. \040
    printf -v ch "\\${BASH_REMATCH[2]}"
    out+=${BASH_REMATCH[1]}$ch
    s=${BASH_REMATCH[3]}
  done
  printf '%s' "$out$s"
}

# A dry run removes nothing, but answers as if it had: what it would unmount or detach counts as gone.
declare -A DRY_GONE_MOUNTS=()
declare -A DRY_GONE_LOOPS=()

# Mount points (field 5) and sources (after " - ": fstype, source) of /proc/self/mountinfo.
MOUNT_POINTS=()
MOUNT_SOURCES=()
read_mounts() {
  local line mp src rest
  MOUNT_POINTS=()
  MOUNT_SOURCES=()
  while IFS= read -r line; do
    read -r _ _ _ _ mp _ <<<"$line"
    rest=${line#* - }
    read -r _ src _ <<<"$rest"
    mp=$(unescape "$mp")
    if [[ -n "${DRY_GONE_MOUNTS[$mp]:-}" ]]; then continue; fi
    MOUNT_POINTS+=("$mp")
    MOUNT_SOURCES+=("$(unescape "$src")")
  done </proc/self/mountinfo
}

mounted_under() {
  local p=$1 mp
  for mp in "${MOUNT_POINTS[@]}"; do
    if [[ "$mp" == "$p" || "$mp" == "$p"/* ]]; then return 0; fi
  done
  return 1
}

# The loop devices on prefixed files, before any unmount: one attached by `mount -o loop`
# (autoclear) goes with its unmount, and is reported too.
loop_file() {
  local file
  file=$(cat "/sys/block/${1#/dev/}/loop/backing_file" 2>/dev/null) || return 0
  printf '%s' "${file% (deleted)}"
}
PREFIXED_LOOPS=()
for bf in /sys/block/loop*/loop/backing_file; do
  dev=${bf#/sys/block/}
  dev=/dev/${dev%%/*}
  file=$(loop_file "$dev")
  if under_prefix "$file" && tagged "$file"; then PREFIXED_LOOPS+=("$dev"$'\t'"$file"); fi
done

if ((IS_ROOT)); then
  declare -A MOUNT_DONE=()
  # Deepest first; a path mounted twice is unmounted once per pass.
  for _pass in 1 2 3 4 5; do
    read_mounts
    best=""
    todo=()
    for mp in "${MOUNT_POINTS[@]}"; do
      if under_prefix "$mp" && tagged "$mp" && [[ -z "${MOUNT_DONE[$mp]:-}" ]]; then todo+=("$mp"); fi
    done
    ((${#todo[@]})) || break
    while ((${#todo[@]})); do
      best=${todo[0]}
      for mp in "${todo[@]}"; do
        if ((${#mp} > ${#best})); then best=$mp; fi
      done
      rest=()
      for mp in "${todo[@]}"; do
        if [[ "$mp" != "$best" ]]; then rest+=("$mp"); fi
      done
      todo=("${rest[@]+"${rest[@]}"}")
      if ((DRY_RUN)); then
        printf 'would remove mount %s\n' "$best"
        DRY_GONE_MOUNTS[$best]=1
      elif umount -- "$best" >/dev/null 2>&1; then
        printf 'removed mount %s\n' "$best"
        REMOVED=$((REMOVED + 1))
      elif umount -l -- "$best" >/dev/null 2>&1; then
        printf 'removed mount %s (lazy unmount: busy)\n' "$best"
        REMOVED=$((REMOVED + 1))
      else
        note "could not unmount $best (kept)"
        MOUNT_DONE[$best]=1
      fi
    done
  done

  read_mounts
  for entry in "${PREFIXED_LOOPS[@]}"; do
    dev=${entry%%$'\t'*}
    file=${entry#*$'\t'}
    bf="/sys/block/${dev#/dev/}/loop/backing_file"
    what="loop device $dev ($file)"
    if [[ "$(loop_file "$dev")" != "$file" ]]; then
      # Detached by the unmount above (or by someone else meanwhile).
      printf 'removed %s\n' "$what"
      REMOVED=$((REMOVED + 1))
      continue
    fi
    busy=""
    for i in "${!MOUNT_SOURCES[@]}"; do
      if [[ "${MOUNT_SOURCES[$i]}" == "$dev" ]]; then busy="mounted at ${MOUNT_POINTS[$i]}"; fi
    done
    holders=("/sys/block/${dev#/dev/}/holders/"*)
    if ((${#holders[@]})); then busy="held by ${holders[*]##*/}"; fi
    if [[ -n "$busy" ]]; then
      note "kept $dev ($file): $busy"
      continue
    fi
    if ((DRY_RUN)); then
      printf 'would remove %s\n' "$what"
      DRY_GONE_LOOPS[$dev]=1
      continue
    fi
    # One attached by `mount -o loop` (autoclear) goes by itself once unmounted, a moment later.
    if [[ "$(cat "/sys/block/${dev#/dev/}/loop/autoclear" 2>/dev/null || true)" == 1 ]]; then
      for _ in $(seq 1 20); do
        [[ -e "$bf" ]] || break
        sleep 0.1
      done
    fi
    if [[ -e "$bf" ]]; then losetup -d "$dev" >/dev/null 2>&1 || true; fi
    if [[ -e "$bf" && "$(cat "/sys/block/${dev#/dev/}/loop/autoclear" 2>/dev/null || true)" != 1 ]]; then
      note "could not remove $what (kept)"
    else
      # Gone, or (still open by a lazily unmounted filesystem) detached as soon as that lets go.
      printf 'removed %s\n' "$what"
      REMOVED=$((REMOVED + 1))
    fi
  done
fi

# --- temp files and folders ----------------------------------------------------------------------

read_mounts
LOOP_FILES=()
for bf in /sys/block/loop*/loop/backing_file; do
  dev=${bf#/sys/block/}
  dev=/dev/${dev%%/*}
  if [[ -n "${DRY_GONE_LOOPS[$dev]:-}" ]]; then continue; fi
  file=$(cat "$bf" 2>/dev/null) || continue
  LOOP_FILES+=("${file% (deleted)}")
done
backs_loop() {
  local p=$1 f
  for f in "${LOOP_FILES[@]}"; do
    if [[ "$f" == "$p" || "$f" == "$p"/* ]]; then return 0; fi
  done
  return 1
}

HOST_SCRIPT_RUNNING=0
if host_script_running; then HOST_SCRIPT_RUNNING=1; fi
NOW=$(date +%s)

# Why a state dir must stay, or nothing.
state_keep_reason() {
  local d=$1 pf state
  if [[ -n "$CALLER_STATE" && "$(realpath -- "$d")" == "$CALLER_STATE" ]]; then echo "the caller's MMAGENT_TEST_STATE"; return; fi
  for pf in "$d/dockerd.pid" "$d/remote-host/sshd.pid"; do
    [[ -e "$pf" ]] || continue
    state=$(pid_file_state "$pf")
    if [[ "$state" != dead ]]; then echo "${pf#"$d"/} names a process that is $state"; return; fi
  done
  if cmdline_mentions "$d/remote-host/sshd_config"; then echo "its sshd runs"; fi
}

for root in "${TMP_ROOTS[@]}"; do
  for e in "$root"/mmagent-*; do
    name=${e##*/}
    [[ -e "$e" || -L "$e" ]] || continue
    tagged "$name" || continue
    # bench/debian-compose.sh keeps Compose there on purpose (a cache, not a leftover).
    [[ "$name" == mmagent-compose-* ]] && continue
    # Not root: another user's entries in sticky /tmp cannot be removed anyway.
    if ((!IS_ROOT)) && [[ ! -O "$e" ]]; then continue; fi
    if [[ -L "$e" ]]; then
      reap "$e" rm -f -- "$e"
      continue
    fi
    reason=""
    if in_use "$e"; then
      reason="in use by a live process"
    elif mounted_under "$e"; then
      reason="a mount is still inside"
    elif backs_loop "$e"; then
      reason="backs an attached loop device"
    elif [[ -d "$e" ]] && [[ -e "$e/dockerd.pid" || -e "$e/dockerd.log" || -d "$e/remote-host" || -n "$CALLER_STATE" && "$(realpath -- "$e")" == "$CALLER_STATE" ]]; then
      reason=$(state_keep_reason "$e")
    elif [[ "$name" == "$HOST_SCRIPT_PREFIX"* ]] && ((HOST_SCRIPT_RUNNING)); then
      # A host script between mktemp and bash holds no descriptor on its file: keep young ones.
      mtime=$(stat -c %Y -- "$e" 2>/dev/null || echo "$NOW")
      if ((NOW - mtime < 60)); then reason="a host script runs and the file is new"; fi
    fi
    if [[ -n "$reason" ]]; then
      note "kept $e: $reason"
      continue
    fi
    reap "$e" rm -rf --one-file-system -- "$e"
  done
done

# --- client folders the program wrote for test stacks (components/dockerSsh.ts) -------------------

home=$(getent passwd "$(id -u)" | cut -d: -f6 || true)
home=${home:-${HOME:-}}
if [[ -n "$home" && -d "$home/.mmagent/ssh" ]]; then
  ssh_removed=0
  for d in "$home/.mmagent/ssh/"*.mmtest-*; do
    tagged "${d##*/}" || continue
    reap "$d" rm -rf --one-file-system -- "$d"
    ssh_removed=1
  done
  # Left empty by us: no trace of the tests in the home (as removeSshClientDir in test/support/host.ts).
  if ((ssh_removed && !DRY_RUN)); then
    if rmdir -- "$home/.mmagent/ssh" 2>/dev/null; then rmdir -- "$home/.mmagent" 2>/dev/null || true; fi
  fi
fi

if ((!DRY_RUN && REMOVED == 0)); then note "nothing to remove"; fi
exit 0
