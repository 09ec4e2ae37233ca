#!/usr/bin/env bash
# Prepares a Docker host for the stack, idempotently: a second run with the same parameters
# changes nothing and restarts nothing.
#
#   MMAGENT_GPUS             none | all | comma-separated indices/UUIDs (0,1 / GPU-…)
#   MMAGENT_SMOKE_GPUS       the GPUs the smoke test selects: the ones the containers get (default MMAGENT_GPUS)
#   MMAGENT_TOOLKIT_VERSION  NVIDIA container toolkit version, e.g. 1.18.0-1
#   MMAGENT_CDI              0 | 1: generate the CDI spec and enable CDI in Docker
#   MMAGENT_SYSCTLS          newline-separated key=value lines, written to /etc/sysctl.d/90-mmagent.conf
#   MMAGENT_SMOKE_IMAGE      image for the GPU smoke test (has nvidia-smi via the toolkit)
#   MMAGENT_HOST_ROOT        prefix for the files this script writes (default "", i.e. /etc/...)
#
# stdout: one JSON object (docker version, GPUs seen by a container, what changed).
# Progress goes to stderr. Fails early, with a message that says what to do, when Docker or
# (with GPUs) the NVIDIA driver is missing.
set -euo pipefail
export LC_ALL=C DEBIAN_FRONTEND=noninteractive

die() { printf 'mmagent prepare-host: %s\n' "$*" >&2; exit 1; }
note() { printf 'mmagent prepare-host: %s\n' "$*" >&2; }
json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

GPUS="${MMAGENT_GPUS:-none}"
SMOKE_GPUS="${MMAGENT_SMOKE_GPUS:-$GPUS}"
VERSION="${MMAGENT_TOOLKIT_VERSION:-1.18.0-1}"
CDI="${MMAGENT_CDI:-0}"
SYSCTLS="${MMAGENT_SYSCTLS:-}"
SMOKE_IMAGE="${MMAGENT_SMOKE_IMAGE:-}"
HOST_ROOT="${MMAGENT_HOST_ROOT:-}"

[[ "$GPUS" =~ ^(none|all|([0-9]{1,2}|(GPU|MIG)-[0-9a-fA-F-]{36})(,([0-9]{1,2}|(GPU|MIG)-[0-9a-fA-F-]{36}))*)$ ]] \
  || die "MMAGENT_GPUS must be none, all or a comma-separated list of GPU indices/UUIDs"
[[ "$SMOKE_GPUS" =~ ^(none|all|([0-9]{1,2}|(GPU|MIG)-[0-9a-fA-F-]{36})(,([0-9]{1,2}|(GPU|MIG)-[0-9a-fA-F-]{36}))*)$ ]] \
  || die "MMAGENT_SMOKE_GPUS must be none, all or a comma-separated list of GPU indices/UUIDs"
# The containers may get GPUs only when the host offers them.
[[ "$GPUS" != none || "$SMOKE_GPUS" == none ]] || die "MMAGENT_SMOKE_GPUS is $SMOKE_GPUS but MMAGENT_GPUS is none"
[[ "$VERSION" =~ ^[0-9][A-Za-z0-9.+~]*(-[A-Za-z0-9.+~]+)?$ ]] || die "MMAGENT_TOOLKIT_VERSION is not a Debian version"
[[ "$CDI" =~ ^[01]$ ]] || die "MMAGENT_CDI must be 0 or 1"
[[ -z "$HOST_ROOT" || "$HOST_ROOT" =~ ^(/[A-Za-z0-9._@+][A-Za-z0-9._@+-]*)+$ ]] || die "MMAGENT_HOST_ROOT must be an absolute path"
[[ "$HOST_ROOT/" != *"/../"* && "$HOST_ROOT/" != *"/./"* ]] || die "MMAGENT_HOST_ROOT must not contain . or .. segments"
[[ -z "$SMOKE_IMAGE" || "$SMOKE_IMAGE" =~ ^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,511}$ ]] || die "MMAGENT_SMOKE_IMAGE is not an image reference"

TOOLKIT_PACKAGES=(nvidia-container-toolkit nvidia-container-toolkit-base libnvidia-container-tools libnvidia-container1)
KEYRING=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
CHANGED=()

# Writes $2 to file $1 only when it differs; returns 0 when it wrote.
write_if_changed() {
  local file="$HOST_ROOT$1" content="$2"
  if [[ -f "$file" && "$(cat "$file")" == "$content" ]]; then return 1; fi
  mkdir -p "$(dirname "$file")"
  printf '%s\n' "$content" >"$file.mmagent-tmp"
  mv -f "$file.mmagent-tmp" "$file"
  CHANGED+=("$1")
  return 0
}

# 1. Docker -----------------------------------------------------------------------------------
command -v docker >/dev/null 2>&1 \
  || die "Docker is not installed on this host: install it (Debian/Ubuntu: apt-get install docker.io), then run pulumi up again"
DOCKER_VERSION=$(docker version -f '{{.Server.Version}}' 2>/dev/null) \
  || die "Docker is installed but its daemon does not answer: start it (systemctl start docker) and check 'docker info'"
note "Docker $DOCKER_VERSION answers"

# 2. Kernel settings --------------------------------------------------------------------------
sysctl_conf="# Managed by mmagent (pulumi). Edit the stack's host.sysctls instead."
while IFS= read -r line; do
  [[ -z "$line" ]] && continue
  [[ "$line" =~ ^[a-z0-9_]+(\.[a-z0-9_-]+)+=[A-Za-z0-9._:-]+( [A-Za-z0-9._:-]+)*$ ]] || die "invalid MMAGENT_SYSCTLS line '$(printf '%q' "$line" | cut -c1-80)'"
  sysctl_conf+=$'\n'"$line"
done <<<"$SYSCTLS"
write_if_changed /etc/sysctl.d/90-mmagent.conf "$sysctl_conf" && note "wrote /etc/sysctl.d/90-mmagent.conf" || true
while IFS= read -r line; do
  [[ -z "$line" || "$line" == \#* ]] && continue
  key=${line%%=*} value=${line#*=}
  current=$(sysctl -n "$key" 2>/dev/null | tr -s '\t ' ' ' || true)
  if [[ "$current" != "$value" ]]; then
    sysctl -q -w "$key=$value" >/dev/null || die "could not set $key=$value (is /proc/sys writable here?)"
    CHANGED+=("sysctl $key")
  fi
done <<<"$sysctl_conf"

# 3. NVIDIA -----------------------------------------------------------------------------------
GPU_JSON="[]"
DOCKER_RESTARTED=false
if [[ "$GPUS" != none ]]; then
  command -v nvidia-smi >/dev/null 2>&1 \
    || die "GPUs were requested (host.gpus=$GPUS) but the NVIDIA driver is not installed (nvidia-smi not found): install the driver on the host, or set host.gpus to none"
  smi_out=$(timeout 60 nvidia-smi -L 2>&1) \
    || die "nvidia-smi failed, so the driver is not working: $(printf '%s' "$smi_out" | head -n 3 | tr '\n' ' ')— fix the driver (reboot after an upgrade?) or set host.gpus to none"
  note "driver answers: $(printf '%s' "$smi_out" | wc -l) GPU(s)"

  # Repository with a signed-by keyring (no apt-key).
  if [[ ! -s "$HOST_ROOT$KEYRING" ]]; then
    note "adding NVIDIA's signing key"
    mkdir -p "$(dirname "$HOST_ROOT$KEYRING")"
    curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | gpg --batch --yes --dearmor -o "$HOST_ROOT$KEYRING"
    CHANGED+=("$KEYRING")
  fi
  repo_changed=0
  write_if_changed /etc/apt/sources.list.d/nvidia-container-toolkit.list \
    "deb [signed-by=$KEYRING] https://nvidia.github.io/libnvidia-container/stable/deb/\$(ARCH) /" && repo_changed=1 || true

  # The four packages at exactly the pinned version, held so apt upgrades cannot drift them.
  need_install=0
  for p in "${TOOLKIT_PACKAGES[@]}"; do
    [[ "$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)" == "$VERSION" ]] || need_install=1
  done
  if [[ $need_install == 1 ]]; then
    note "installing the NVIDIA container toolkit $VERSION"
    apt-get update -qq
    apt-mark unhold "${TOOLKIT_PACKAGES[@]}" >/dev/null 2>&1 || true
    pinned=()
    for p in "${TOOLKIT_PACKAGES[@]}"; do pinned+=("$p=$VERSION"); done
    apt-get install -y -qq --allow-downgrades "${pinned[@]}" >&2
    apt-mark hold "${TOOLKIT_PACKAGES[@]}" >/dev/null
    CHANGED+=("nvidia-container-toolkit=$VERSION")
  elif [[ $repo_changed == 1 ]]; then
    apt-get update -qq
  fi

  # Docker runtime: restart Docker only when daemon.json actually changed.
  daemon_json="$HOST_ROOT/etc/docker/daemon.json"
  before=$(sha256sum "$daemon_json" 2>/dev/null | cut -d' ' -f1 || true)
  ctk_args=(runtime configure --runtime=docker)
  [[ "$CDI" == 1 ]] && ctk_args+=(--cdi.enabled)
  nvidia-ctk "${ctk_args[@]}" >&2
  after=$(sha256sum "$daemon_json" 2>/dev/null | cut -d' ' -f1 || true)
  if [[ "$before" != "$after" ]]; then
    note "daemon.json changed: restarting Docker"
    systemctl restart docker
    DOCKER_RESTARTED=true
    CHANGED+=("/etc/docker/daemon.json")
  fi

  if [[ "$CDI" == 1 ]]; then
    # Names by index and by UUID, so every form host.gpus accepts resolves (nvidia.com/gpu=0, =GPU-…, =all).
    nvidia-ctk cdi generate --device-name-strategy=index --device-name-strategy=uuid --output=/etc/cdi/nvidia.yaml >&2
  fi

  # Against "Failed to initialize NVML: Unknown Error" after systemctl daemon-reload
  # (nvidia-container-toolkit#48): /dev/char symlinks, now and whenever the driver loads.
  write_if_changed /etc/udev/rules.d/71-nvidia-dev-char.rules \
    'ACTION=="add", DEVPATH=="/bus/pci/drivers/nvidia", RUN+="/usr/bin/nvidia-ctk system create-dev-char-symlinks --create-all"' \
    && note "installed the dev-char udev rule" || true
  nvidia-ctk system create-dev-char-symlinks --create-all >&2

  # Smoke test: a container sees exactly the GPUs the stack's containers will get, requested the
  # same way (CDI names, or the NVIDIA runtime with those device IDs). The quotes keep docker/cli's
  # CSV parser from reading "device=0,1" as device 0 plus a count (the CLI, unlike the provider,
  # does not strip them).
  [[ -n "$SMOKE_IMAGE" ]] || die "MMAGENT_SMOKE_IMAGE is required when GPUs are requested"
  [[ "$SMOKE_GPUS" != none ]] || SMOKE_GPUS="$GPUS"
  if [[ "$CDI" == 1 ]]; then
    devices=()
    if [[ "$SMOKE_GPUS" == all ]]; then devices=(--device nvidia.com/gpu=all); else
      IFS=, read -ra ids <<<"$SMOKE_GPUS"; for id in "${ids[@]}"; do devices+=(--device "nvidia.com/gpu=$id"); done
    fi
  elif [[ "$SMOKE_GPUS" == all ]]; then
    devices=(--gpus all)
  else
    devices=(--gpus "\"device=$SMOKE_GPUS\"")
  fi
  csv=$(docker run --rm "${devices[@]}" "$SMOKE_IMAGE" \
        nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version --format=csv,noheader,nounits 2>&1) \
    || die "the GPU smoke test failed (docker run ${devices[*]} $SMOKE_IMAGE nvidia-smi): $(printf '%s' "$csv" | head -n 3 | tr '\n' ' ')"
  GPU_JSON="["
  first=1
  while IFS= read -r row; do
    [[ -z "$row" ]] && continue
    IFS=',' read -r idx uuid name mem driver <<<"$row"
    idx=$(echo "$idx" | xargs); uuid=$(echo "$uuid" | xargs); name=$(echo "$name" | xargs); mem=$(echo "$mem" | xargs); driver=$(echo "$driver" | xargs)
    [[ "$idx" =~ ^[0-9]+$ && "$mem" =~ ^[0-9]+$ ]] || die "unexpected nvidia-smi output: $row"
    [[ $first == 1 ]] || GPU_JSON+=","
    GPU_JSON+="{\"index\":$idx,\"uuid\":$(json_str "$uuid"),\"name\":$(json_str "$name"),\"memoryMiB\":$mem,\"driverVersion\":$(json_str "$driver")}"
    first=0
  done <<<"$csv"
  GPU_JSON+="]"
  note "smoke test passed"
fi

changed_json="["
for i in "${!CHANGED[@]}"; do
  [[ $i == 0 ]] || changed_json+=","
  changed_json+=$(json_str "${CHANGED[$i]}")
done
changed_json+="]"
printf '{"docker":%s,"gpus":%s,"toolkitVersion":%s,"dockerRestarted":%s,"changed":%s}\n' \
  "$(json_str "$DOCKER_VERSION")" "$GPU_JSON" "$(json_str "$([[ "$GPUS" == none ]] && echo "" || echo "$VERSION")")" "$DOCKER_RESTARTED" "$changed_json"
