#!/usr/bin/env bash
# One slice of a shipped model's training on a lent GPU machine (device tool):
#   bash scripts/device/train.sh restorer|perception
# Carry `carry` (made by scripts/device/pack.py pack). Environment:
#   MINUTES  training minutes for this slice (default 7)
#   RECIPE   the recipe (default configs/TRAINER-gpu.yaml)
#   INIT     weights to continue from (e.g. carry/restorer-init), else from scratch
#   LR       peak learning rate (default: the recipe's)
#   STEPS    steps of this slice (default: measured by a short probe)
#   EXTRA    more trainer arguments, e.g. "--set workers=2" for a CPU dry run
#   GUARD    minutes past MINUTES after which the slice stops regardless (default 0.75)
#   PROBE    steps of the speed probe (default 150)
# Without STEPS a short probe measures steps/s, so the cosine schedule ends in the slice.
set -euo pipefail
export PYTHONWARNINGS=ignore PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 VLIR_MINILM=/tmp/minilm
OUT=${OUT:-runs/device-out}
mkdir -p "$OUT"
MINUTES=${MINUTES:-7}
TRAINER=${1:-restorer}
case "$TRAINER" in
    restorer) model=RestorerModel; package=restoration; probe_extra=() ;;
    # the probe's run must not spend the slice calibrating thresholds
    perception) model=PerceptionModel; package=perception; probe_extra=(--set calibrate=false) ;;
    *) echo "usage: train.sh restorer|perception" >&2; exit 2 ;;
esac
python3 scripts/device/pack.py unpack /tmp/minilm
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
common=(--recipe "${RECIPE:-configs/$TRAINER-gpu.yaml}" --set data=carry/data/train/BSD400
        --set captions=carry/data/captions/train.tsv)
[ -n "${INIT:-}" ] && common+=(--set "init=$INIT")
[ -n "${LR:-}" ] && common+=(--set "lr=$LR")
# shellcheck disable=SC2206
common+=(${EXTRA:-})
if [ -n "${STEPS:-}" ]; then
    steps=$STEPS
else
python3 -m "vlir.training.$TRAINER" "${common[@]}" --out /tmp/probe --steps "${PROBE:-150}" \
    --set log_every=50 --set validate_every=100000 "${probe_extra[@]}" 2>&1 | tee "$OUT/probe.log"
steps=$(python3 - "$MINUTES" <<'PY'
import json, sys
rows = [json.loads(line) for line in open("/tmp/probe/log.jsonl") if "lr" in line]
a, b = rows[0], rows[-1]
rate = (b["step"] - a["step"]) / max(1e-3, 60 * (b["minutes"] - a["minutes"]))
print(max(100, int(rate * 60 * float(sys.argv[1])) // 100 * 100))
PY
)
echo "probe: ${steps} steps fit in ${MINUTES} min"
fi
run=runs/$TRAINER-gpu
python3 -m "vlir.training.$TRAINER" "${common[@]}" --out "$run" --steps "$steps" \
    --set "max_minutes=$(python3 -c "print($MINUTES + ${GUARD:-0.75})")" 2>&1 | tee "$OUT/train.log"
python3 - "$OUT" "$run" "$package" "$model" <<'PY'
import importlib, shutil, sys, torch
out, run, package, model = sys.argv[1:]
Model = getattr(importlib.import_module(f"vlir.{package}"), model)
for name in ("best", "last"):
    Model.from_pretrained(f"{run}/{name}").save_pretrained(f"{out}/{name}", dtype=torch.float16)
shutil.copy(f"{run}/log.jsonl", f"{out}/log.jsonl")
PY
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader || true
