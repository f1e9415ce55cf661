#!/usr/bin/env bash
# Fine-tune the shipped residual EdgeConnect pair (weighted boundary loss and baseline, same
# batches, same steps) on one GPU: the line-guided prior it refines in the pipeline, weighted L1
# plus the gradient-domain L1, no adversarial term. The classical prior of each batch is CPU
# work, built ahead by --workers processes so the GPU is not left waiting.
# Usage (from the repository root): models/finetune_gpu.sh OUT_DIR [MINUTES] [extra train args...]
# MINUTES is the training loop's budget; building the catalog and the data pool comes on top.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?weights output folder}; MIN=${2:-5.5}; shift $(( $# < 2 ? $# : 2 ))
export STAGER_DATA_DIR=${STAGER_DATA_DIR:-/tmp/stager_data} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
LOGS=${LOGS:-/tmp/stager_finetune_logs}
WORKERS=${WORKERS:-$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))}
mkdir -p "$OUT" "$LOGS"
rm -f "$LOGS"/inpaint*_samples_*.png "$LOGS"/inpaint*_loss.csv  # an earlier run's, not this one's
[ -f "$STAGER_DATA_DIR/catalog/manifest.json" ] || "$PY" -m stager catalog build > "$LOGS/catalog.log" 2>&1
"$PY" -m stager train edgeconnect --stage inpaint --data mix --init models/weights \
  --variants weighted,baseline --boundary-lambda 4 --adv-weight 0 --grad-weight 1 --prior lines \
  --lr 2e-4 --batch 32 --res 128 --crops 6000 --holes 2000 --workers "$WORKERS" --device auto \
  --max-minutes "$MIN" --steps 100000 --seed 6 --sample-every 2000 \
  --out "$OUT" --log-dir "$LOGS" "$@"
# the loss curve and the last samples beside the weights (the checkpoint stays behind)
cp "$LOGS"/inpaint*_loss.csv "$OUT"/
last=$(ls "$LOGS"/inpaint*_samples_*.png 2>/dev/null | tail -1) && [ -n "$last" ] && cp "$last" "$OUT"/ || true
