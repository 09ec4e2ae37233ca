#!/usr/bin/env bash
# Benchmark (a): the pre-change snapshot vs copying the data by hand before an upgrade, and the
# restore — with the project's own storage script on a real Btrfs loop filesystem.
# Prints a table; not a test. Needs root and btrfs-progs (scripts/test-host.sh up).
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT=components/scripts/storage.sh
RUNS=${RUNS:-5}
work=$(mktemp -d /tmp/mmagent-bench.XXXXXX)
cleanup() { umount "$work/mnt" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
truncate -s 4G "$work/pool.img"; mkfs.btrfs -q "$work/pool.img"; mkdir "$work/mnt"; mount -o loop "$work/pool.img" "$work/mnt"
root="$work/mnt/mmagent"; mkdir -p "$root"

storage() { env MMAGENT_BACKEND=btrfs MMAGENT_ROOT="$root" "$@" bash "$SCRIPT" >/dev/null 2>&1; }
ms() { local s e; s=$(date +%s%N); "$@"; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for v in small big; do storage MMAGENT_ACTION=ensure MMAGENT_VOLUME="$v" MMAGENT_BTRFS_NOCOW=0; done
dd if=/dev/urandom of="$root/small/data" bs=1M count=10 status=none
dd if=/dev/urandom of="$root/big/data" bs=1M count=1024 status=none
# cp on Btrfs reflinks by default (coreutils 9); --reflink=never is the byte copy people make.
sync

snap_small=(); snap_big=(); copy_big=(); restore_big=()
for i in $(seq 1 "$RUNS"); do
  snap_small+=("$(ms storage MMAGENT_ACTION=snapshot MMAGENT_VOLUMES=small MMAGENT_SNAPSHOT="mmagent-pre-s000000$i" MMAGENT_KEEP=100)")
  snap_big+=("$(ms storage MMAGENT_ACTION=snapshot MMAGENT_VOLUMES=big MMAGENT_SNAPSHOT="mmagent-pre-b000000$i" MMAGENT_KEEP=100)")
  copy_big+=("$(ms cp -a --reflink=never "$root/big" "$work/mnt/copy-$i")"); rm -rf "$work/mnt/copy-$i"; sync
  restore_big+=("$(ms storage MMAGENT_ACTION=restore MMAGENT_VOLUMES=big MMAGENT_SNAPSHOT="mmagent-pre-b000000$i")")
done
s_small=$(printf '%s\n' "${snap_small[@]}" | median); s_big=$(printf '%s\n' "${snap_big[@]}" | median)
c_big=$(printf '%s\n' "${copy_big[@]}" | median); r_big=$(printf '%s\n' "${restore_big[@]}" | median)

printf '\nPre-change snapshot vs copy (Btrfs loop device, median of %s runs, ms, whole script incl. bash start-up)\n' "$RUNS"
printf '%-42s %10s %12s\n' "operation" "ms" "vs snapshot 1 GiB"
printf '%-42s %10s %12s\n' "snapshot 10 MiB volume (storage.sh)" "$s_small" "$(awk "BEGIN{printf \"%.2fx\", $s_small/$s_big}")"
printf '%-42s %10s %12s\n' "snapshot 1 GiB volume (storage.sh)" "$s_big" "1.00x"
printf '%-42s %10s %12s\n' "cp -a --reflink=never 1 GiB (by hand)" "$c_big" "$(awk "BEGIN{printf \"%.1fx\", $c_big/$s_big}")"
printf '%-42s %10s %12s\n' "restore 1 GiB volume (storage.sh)" "$r_big" "$(awk "BEGIN{printf \"%.2fx\", $r_big/$s_big}")"
