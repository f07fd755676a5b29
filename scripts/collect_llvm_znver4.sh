#!/usr/bin/env bash
# Collect the llvm-znver4 dataset on this machine: resumable, pinned to one core so that
# development on the other core disturbs the measurements as little as possible.
# Rerun it to resume; finished tasks are skipped. Usage: scripts/collect_llvm_znver4.sh [b1|b8] [CORE]
# Two runs may share the folder (e.g. b1 on core 1 and b8 on core 0): tasks are claimed.
# --number 1 (was 3 until 2026-11-24 16:05 UTC): min-repeat-ms still makes every repeat of a
# fast kernel average over >= 25 ms of calls (TVM raises `number` to reach it), while a slow
# kernel (>= 25 ms per call, the big convs of the later tasks) is no longer run 3x per repeat;
# those tasks took 500-1000 s each. Each record stores its settings.
# TARGET=llvm-rocketlake scripts/collect_llvm_znver4.sh b1 1 collects the same models for
# another CPU into data/<TARGET> (tunezoo collect refuses a target this machine is not).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${TARGET:-llvm-znver4}
phase=${1:-b1}
core=${2:-1}
models_b1="resnet18,mobilenet_v2,bert_tiny,gpt2_block,llama_block,efficientnet_b0,vgg11,densenet121,resnet50,mobilenet_v3_small,vit_tiny,mlp_mixer_s,squeezenet1_0,bert_base_layer,lstm_cell,resnet34,bert_tiny_s64,bert_tiny_s256,lstm,gru"
if [ "$phase" = b8 ]; then
  models=$(echo "$models_b1" | sed 's/,/-b8,/g; s/$/-b8/')
else
  models=$models_b1
fi
exec taskset -c "$core" tunezoo collect --target "$target" --models "$models" \
  --candidates 128 --random 64 --batch 32 --num-cores 1 \
  --number 1 --repeat 5 --min-repeat-ms 25 --cpu-affinity "$core" \
  --out "data/$target"
