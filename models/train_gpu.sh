#!/usr/bin/env bash
# How the shipped EdgeConnect weights are trained on one GPU (see models/weights/MODEL_CARD.md):
# the edge model first, then three seeds of the weighted and baseline inpainting models, one
# process per seed (both variants of a seed share its batches), all on the same GPU.
# Usage: models/train_gpu.sh OUT_DIR [EDGE_MINUTES] [INPAINT_MINUTES] [extra train args...]
set -euo pipefail
OUT=${1:?weights output folder}; EDGE_MIN=${2:-1.5}; INP_MIN=${3:-5}; shift $(( $# < 3 ? $# : 3 ))
# Each seed's process fixes its own step count from the time budget: the weighted and baseline
# models of a seed always train the same steps on the same batches (the paired comparison).
COMMON=(--res 256 --batch 16 --device auto --data mix --sample-every 500 --steps 100000)
mkdir -p "$OUT/seeds" "$OUT/logs"
python -m stager catalog build
python -m stager train edgeconnect --stage edge --width 24 --blocks 4 --max-minutes "$EDGE_MIN" \
  --crops 3000 --holes 1000 --workers 12 --out "$OUT" --log-dir "$OUT/logs/edge" \
  "${COMMON[@]}" "$@" > "$OUT/logs/edge.log" 2>&1
for s in 0 1 2; do
  mkdir -p "$OUT/s$s"; cp "$OUT/edgeconnect_edge.safetensors" "$OUT/s$s/"
  python -m stager train edgeconnect --stage inpaint --seeds "$s" --variants weighted,baseline \
    --width 32 --blocks 6 --max-minutes "$INP_MIN" --crops 3000 --holes 1000 --workers 4 \
    --out "$OUT/s$s" --log-dir "$OUT/logs/inpaint_s$s" "${COMMON[@]}" "$@" \
    > "$OUT/logs/inpaint_s$s.log" 2>&1 &
done
wait
cp "$OUT/s0/edgeconnect_inpaint_weighted.safetensors" "$OUT/s0/edgeconnect_inpaint_baseline.safetensors" "$OUT/"
for s in 1 2; do
  for v in weighted baseline; do
    cp "$OUT/s$s/edgeconnect_inpaint_$v.safetensors" "$OUT/seeds/edgeconnect_inpaint_${v}_seed$s.safetensors"
  done
done
rm -rf "$OUT"/s[0-9]
