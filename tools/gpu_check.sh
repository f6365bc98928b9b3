#!/bin/bash
# EmoSEM CUDA checks: bf16 vs fp32 training steps, resume, SAM ViT-B at 1024 in bf16,
# inference / benchmark / evaluation on the GPU. Tiny random LM (SmolLM2 weights cannot travel).
# usage: bash tools/gpu_check.sh [cuda|cpu]   (cpu: a dry run; STEPS, VSTEPS, VSIZE shrink it)
# Needs the project's packages importable (PYTHONPATH or an install); writes under /tmp.
set -u
DEV=${1:-cuda}
OUT=${OUT:-/tmp/devout}; mkdir -p "$OUT"
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
CPUFLAG=""; [ "$DEV" = cpu ] && CPUFLAG="--cpu"
STEPS=${STEPS:-30}; HALF=$((STEPS / 2)); VSTEPS=${VSTEPS:-12}; VSIZE=${VSIZE:-1024}
W=/tmp/emosem-dev; rm -rf $W; mkdir -p $W
TIMECMD=(); [ -x /usr/bin/time ] && TIMECMD=(/usr/bin/time -f "wall %e s, max RSS %M KB")
step() { echo; echo "=== $1 ($(date +%T))"; }
step "environment"
nvidia-smi -L 2>/dev/null
$PY -c "import torch, transformers, peft, accelerate; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-', 'bf16', torch.cuda.is_available() and torch.cuda.is_bf16_supported()); print('transformers', transformers.__version__, 'peft', peft.__version__, 'accelerate', accelerate.__version__)"
step "tiny LM + synthetic data"
$PY -c "from emosem.modeling.lm_weights import build_tiny_lm; print(build_tiny_lm('$W/tiny-llama'))" || exit 1
$PY tools/make_synthetic_artemis.py --out $W/syn --paintings 96 --size 256 --seed 0 2>&1 | tail -1 || exit 1
common="--config configs/smoke.yaml --set data.root=$W/syn --set model.lm=$W/tiny-llama --set train.max_steps=$STEPS --set train.batch_size=8 --set train.save_every=$HALF --set train.eval_every=$STEPS --set train.log_every=1 $CPUFLAG"
for mp in no bf16; do
  step "train sam_tiny, mixed_precision=$mp, 30 steps"
  timeout 150 "${TIMECMD[@]}" $PY tools/train.py $common --set train.mixed_precision=$mp --output-dir $W/run-$mp 2>&1 | grep -E "Error|error|Traceback|wall" | tail -5
  $PY -c "
import json; m=json.load(open('$W/run-$mp/metrics.json')); t=m['train']
print('$mp', 'loss first/last', round(t[0]['loss'],4), round(t[-1]['loss'],4), 'samples/s (median of steps 2..)', round(sorted(x['samples_per_s'] for x in t[1:] or t)[len(t[1:] or t)//2],1), 'val', {k: round(v,4) for k,v in m['val'][-1].items() if isinstance(v,float)})"
done
step "resume: from the bf16 and fp32 runs' step-$HALF checkpoints to $STEPS, against a second straight run (GPU noise)"
for mp in no bf16; do
  timeout 90 $PY tools/train.py $common --set train.mixed_precision=$mp --output-dir $W/again-$mp 2>&1 | grep -E "Traceback|Error" | tail -3
  timeout 90 $PY tools/train.py $common --set train.mixed_precision=$mp --output-dir $W/res-$mp --resume $W/run-$mp/checkpoints/step_$(printf %08d $HALF) 2>&1 | grep -E "Traceback|Error|Resumed" | tail -3
done
$PY -c "
L=lambda r: {p['step']: p['loss'] for p in __import__('json').load(open('$W/'+r+'/metrics.json'))['train']}
for mp in ('no', 'bf16'):
    x = L('run-'+mp)
    for other in ('again-'+mp, 'res-'+mp):
        y = L(other); d = [abs(x[s]-y[s])/abs(x[s]) for s in range($HALF+1, $STEPS+1)]
        print(mp, 'straight vs', other, 'steps $((HALF+1))-$STEPS: max relative loss difference %.1e' % max(d))"
step "SAM ViT-B (random init, frozen encoder) at 1024, bf16, batch 4, 12 steps"
timeout 150 "${TIMECMD[@]}" $PY tools/train.py --config configs/sam_vit_b_gpu.yaml --set data.root=$W/syn --set data.csv=artemis_dataset_release_v0.csv --set data.image_root=images --set data.num_workers=4 --set model.sam_checkpoint=null --set model.lm=$W/tiny-llama --set train.max_steps=$VSTEPS --set data.image_size=$VSIZE --set train.batch_size=4 --set train.grad_accum=1 --set train.save_every=$VSTEPS --set train.eval_every=1000 --set train.log_every=2 --set train.warmup_steps=2 $CPUFLAG --output-dir $W/run-vitb 2>&1 | grep -E "Traceback|Error|wall" | tail -5
$PY -c "
import json; m=json.load(open('$W/run-vitb/metrics.json')); t=m['train']
print('vit-b bf16 loss', [round(x['loss'],3) for x in t], 'samples/s', [round(x['samples_per_s'],1) for x in t], 'summary', m['summary'].get('peak_cuda_mb', m['summary'].get('peak_rss_mb')))"
step "inference on $DEV (bf16-trained tiny checkpoint, and the ViT-B one saved in bf16)"
IMG=$(ls $W/syn/images/*/*.jpg | head -1)
for ck in $W/run-bf16/last $W/run-vitb/last; do
  timeout 90 $PY tools/infer.py "$IMG" --checkpoint $ck -e awe -e fear --device $DEV --out $W/infer-$(basename $(dirname $ck)) --json-only 2>&1 | grep -E "Traceback|Error|Done" | tail -3
done
step "benchmark --quick on $DEV"
timeout 200 $PY tools/benchmark.py --checkpoint $W/run-bf16/last --what all --quick --device $DEV --image "$IMG" --out $OUT/bench_$DEV.json 2>&1 | grep -v -E "^\s*$|Loading" | tail -45
step "evaluate --no-explain on $DEV"
timeout 90 $PY tools/evaluate.py --checkpoint $W/run-bf16/last --data $W/syn --split test --no-explain --device $DEV --out $W/eval --quiet 2>&1 | grep -E "gIoU|cIoU|Done|Traceback|Error" | tail -5
step "done"
