#!/usr/bin/env bash
# A "remote" test host on this machine: a network namespace with its own sshd, reachable at
# 10.213.7.2:2222, with a non-root deploy user that may run the host scripts through sudo (the
# exact sudoersLine() of components/hostScript.ts), a second user without that rule, and the
# Docker engine of this machine (the namespace shares its filesystem and socket).
#
#   scripts/remote-test-host.sh up     remove leftovers of an earlier run, install packages,
#                                      create the namespace, keys, users, sudoers file; start sshd
#   scripts/remote-test-host.sh down   stop that sshd, remove all of it (idempotent)
#   scripts/remote-test-host.sh env    print env.json (host, port, users, key paths, host keys)
#
# Everything it creates is named mmagent-rh*; nothing else is touched. State (keys, sshd_config,
# the sshd pid file and log, env.json) lives in $MMAGENT_TEST_STATE/remote-host
# (default /tmp/mmagent-test-host/remote-host).
set -euo pipefail

STATE_DIR="${MMAGENT_TEST_STATE:-/tmp/mmagent-test-host}/remote-host"
PREFIX="mmagent-rh"
NETNS="$PREFIX"
VETH_HOST="${PREFIX}0"
VETH_NS="${PREFIX}1"
HOST_ADDR="10.213.7.1"
NS_ADDR="10.213.7.2"
PORT=2222
DEPLOY_USER="${PREFIX}-deploy"
NOSUDO_USER="${PREFIX}-nosudo"
SUDOERS_FILE="/etc/sudoers.d/${PREFIX}-deploy"
PACKAGES=(openssh-server openssh-client iproute2 sudo)
# The same template as SCRIPT_FILE_TEMPLATE in components/hostScript.ts.
SCRIPT_FILE_TEMPLATE="/tmp/mmagent-host.XXXXXXXXXX"

log() { printf '[remote-test-host] %s\n' "$*" >&2; }

# sudoersLine(user) of components/hostScript.ts, computed the same way (each X becomes ?).
sudoers_line() {
  printf '%s ALL=(root) NOPASSWD: /bin/bash %s' "$1" "${SCRIPT_FILE_TEMPLATE//X/?}"
}

json_string() {
  local s=${1//\\/\\\\}
  printf '"%s"' "${s//\"/\\\"}"
}

# shellcheck source=lib/debian-packages.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/debian-packages.sh"
install_packages() { install_debian_packages log "${PACKAGES[@]}"; }

# Pids of processes that run as `user` (sessions left by a killed test), listed one by one.
user_pids() {
  ps -o pid= -u "$1" 2>/dev/null | tr -d ' ' || true
}

kill_pids() {
  local pid
  for pid in "$@"; do
    if [[ -n "$pid" ]]; then kill -9 "$pid" 2>/dev/null || true; fi
  done
}

# Running and not yet a zombie (a daemon's parent here is init, which may reap it late).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  [[ "${stat##*) }" != Z* ]]
}

stop_sshd() {
  local pidfile="$STATE_DIR/sshd.pid" pid
  [[ -f "$pidfile" ]] || return 0
  pid=$(cat "$pidfile")
  # Only the sshd started with our config: a stale pid file must not kill a reused pid.
  if [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$STATE_DIR/sshd_config"; then
    log "stopping sshd (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pidfile"
}

# Removes everything with the prefix, whatever state an earlier (possibly killed) run left.
clean() {
  stop_sshd
  local ns link user
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${PREFIX}" || true); do
    # Processes still inside our namespace (sshd session children) would keep it alive.
    # shellcheck disable=SC2046
    kill_pids $(ip netns pids "$ns" 2>/dev/null || true)
    log "deleting netns $ns"
    ip netns del "$ns" 2>/dev/null || true
  done
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^${PREFIX}" || true); do
    log "deleting link $link"
    ip link del "$link" 2>/dev/null || true
  done
  for user in "$DEPLOY_USER" "$NOSUDO_USER"; do
    if getent passwd "$user" >/dev/null; then
      # shellcheck disable=SC2046
      kill_pids $(user_pids "$user")
      log "removing user $user"
      userdel -r "$user" >/dev/null 2>&1 || userdel -f -r "$user" >/dev/null 2>&1 || true
    fi
  done
  rm -f /etc/sudoers.d/"${PREFIX}"-*
  rm -rf "$STATE_DIR"
}

check_address_free() {
  # 10.213.7.0/30 must not be routed elsewhere, or connections would not reach our namespace.
  if ip -o addr show | grep -v " ${VETH_HOST} " | grep -qE "inet 10\.213\.7\.[0-3]/"; then
    log "10.213.7.0/30 is already used by another interface:"
    ip -o addr show | grep -E "inet 10\.213\.7\.[0-3]/" >&2
    exit 1
  fi
}

setup_network() {
  check_address_free
  ip netns add "$NETNS"
  ip link add "$VETH_HOST" type veth peer name "$VETH_NS"
  ip link set "$VETH_NS" netns "$NETNS"
  ip addr add "$HOST_ADDR/30" dev "$VETH_HOST"
  ip link set "$VETH_HOST" up
  ip netns exec "$NETNS" ip addr add "$NS_ADDR/30" dev "$VETH_NS"
  ip netns exec "$NETNS" ip link set "$VETH_NS" up
  ip netns exec "$NETNS" ip link set lo up
}

generate_keys() {
  mkdir -p "$STATE_DIR"
  chmod 0700 "$STATE_DIR"
  ssh-keygen -q -t ed25519 -N '' -C "${PREFIX}-host" -f "$STATE_DIR/ssh_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -C "${PREFIX}-wrong-host" -f "$STATE_DIR/wrong_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -C "${PREFIX}-client" -f "$STATE_DIR/client_ed25519"
  ssh-keygen -q -t ed25519 -N '' -C "${PREFIX}-wrong-client" -f "$STATE_DIR/wrong_client_ed25519"
  chmod 0600 "$STATE_DIR/ssh_host_ed25519_key" "$STATE_DIR/wrong_host_ed25519_key" \
    "$STATE_DIR/client_ed25519" "$STATE_DIR/wrong_client_ed25519"
  # The private client keys are read by the tests (root); the state dir stays 0700.
}

create_user() {
  local user=$1 home
  useradd -m -s /bin/bash -G docker "$user"
  # useradd leaves the password "!" (locked); with UsePAM no, sshd refuses locked accounts even
  # for public keys. "*" means: no password can ever match, but the account is not locked.
  usermod -p '*' "$user"
  home=$(getent passwd "$user" | cut -d: -f6)
  install -d -m 0700 -o "$user" -g "$user" "$home/.ssh"
  install -m 0600 -o "$user" -g "$user" "$STATE_DIR/client_ed25519.pub" "$home/.ssh/authorized_keys"
}

setup_users() {
  if ! getent group docker >/dev/null; then
    log "creating group docker"
    groupadd -f docker
  fi
  local sock=/var/run/docker.sock
  if [[ -S "$sock" ]] && [[ "$(stat -c %G "$sock")" != docker ]]; then
    log "$sock belongs to group $(stat -c %G "$sock"); running chgrp docker $sock so the docker group reaches the engine"
    chgrp docker "$sock"
  fi
  create_user "$DEPLOY_USER"
  create_user "$NOSUDO_USER"
  # sudo ignores files in sudoers.d whose names contain a dot, so the .tmp is never read half-written;
  # a broken file there would lock sudo for everyone, hence visudo -cf before it moves into place.
  local tmp="${SUDOERS_FILE}.tmp"
  sudoers_line "$DEPLOY_USER" >"$tmp"
  printf '\n' >>"$tmp"
  chmod 0440 "$tmp"
  visudo -cf "$tmp" >/dev/null
  mv -f "$tmp" "$SUDOERS_FILE"
}

write_sshd_config() {
  cat >"$STATE_DIR/sshd_config" <<EOF
# sshd for the mmagent remote test host (scripts/remote-test-host.sh); not /etc/ssh/sshd_config.
Port $PORT
ListenAddress $NS_ADDR
HostKey $STATE_DIR/ssh_host_ed25519_key
PidFile $STATE_DIR/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# The authorized_keys files sit in the users' homes (0700 .ssh, 0600 file), so the checks stay on.
StrictModes yes
PermitRootLogin no
AllowUsers $DEPLOY_USER $NOSUDO_USER
# No AcceptEnv line: no client environment variable is accepted (the project sends parameters on stdin).
X11Forwarding no
AllowAgentForwarding no
AllowTcpForwarding no
PrintMotd no
LogLevel VERBOSE
EOF
  # sshd (also -t) wants its privilege separation directory; Debian's unit creates it at boot.
  mkdir -p /run/sshd
  /usr/sbin/sshd -t -f "$STATE_DIR/sshd_config"
}

start_sshd() {
  # nsenter --net, not `ip netns exec`: that would also give sshd a private copy of the mount
  # table, so filesystems mounted later (the tests' Btrfs loop devices) would not exist for it.
  nsenter --net="/var/run/netns/$NETNS" /usr/sbin/sshd -f "$STATE_DIR/sshd_config" -E "$STATE_DIR/sshd.log"
  for _ in $(seq 1 100); do
    if timeout 1 bash -c "exec 3<>/dev/tcp/$NS_ADDR/$PORT" 2>/dev/null; then
      log "sshd answers on $NS_ADDR:$PORT (pid $(cat "$STATE_DIR/sshd.pid" 2>/dev/null || echo '?'))"
      return
    fi
    sleep 0.1
  done
  log "sshd did not answer on $NS_ADDR:$PORT within 10 s; see $STATE_DIR/sshd.log"
  exit 1
}

write_env() {
  local host_key wrong_host_key
  host_key=$(cut -d' ' -f1,2 "$STATE_DIR/ssh_host_ed25519_key.pub")
  wrong_host_key=$(cut -d' ' -f1,2 "$STATE_DIR/wrong_host_ed25519_key.pub")
  {
    printf '{\n'
    printf '  "host": %s,\n' "$(json_string "$NS_ADDR")"
    printf '  "port": %d,\n' "$PORT"
    printf '  "user": %s,\n' "$(json_string "$DEPLOY_USER")"
    printf '  "noSudoUser": %s,\n' "$(json_string "$NOSUDO_USER")"
    printf '  "privateKeyPath": %s,\n' "$(json_string "$STATE_DIR/client_ed25519")"
    printf '  "hostKey": %s,\n' "$(json_string "$host_key")"
    printf '  "wrongHostKey": %s,\n' "$(json_string "$wrong_host_key")"
    printf '  "wrongPrivateKeyPath": %s,\n' "$(json_string "$STATE_DIR/wrong_client_ed25519")"
    printf '  "sudoersFile": %s,\n' "$(json_string "$SUDOERS_FILE")"
    printf '  "stateDir": %s\n' "$(json_string "$STATE_DIR")"
    printf '}\n'
  } >"$STATE_DIR/env.json.tmp"
  mv -f "$STATE_DIR/env.json.tmp" "$STATE_DIR/env.json"
}

up() {
  clean
  install_packages
  setup_network
  generate_keys
  setup_users
  write_sshd_config
  start_sshd
  write_env
  log "ready: ssh -i $STATE_DIR/client_ed25519 -p $PORT $DEPLOY_USER@$NS_ADDR (env: $STATE_DIR/env.json)"
}

env_json() {
  if [[ ! -f "$STATE_DIR/env.json" ]]; then
    log "no $STATE_DIR/env.json; run: sudo scripts/remote-test-host.sh up"
    exit 1
  fi
  cat "$STATE_DIR/env.json"
}

case "${1:-}" in
  up) up ;;
  down) clean; log "removed" ;;
  env) env_json ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
