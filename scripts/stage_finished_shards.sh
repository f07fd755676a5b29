#!/usr/bin/env bash
# Stage (git add) the shards of finished collection tasks only: a task is finished when its
# workloads file exists (records are written first). A task in flight is left out.
set -euo pipefail
dir=${1:-data/llvm-znver4}
cd "$(dirname "$0")/.."
n=0
for wl in "$dir"/workloads/*.parquet; do
  [ -e "$wl" ] || continue
  shard=$(basename "$wl" .parquet)
  git add "$wl" "$dir"/records/*-"$shard".parquet
  n=$((n + 1))
done
echo "staged $n finished task shards from $dir"
