#!/usr/bin/env bash
# The GPU check in one command: r1 doctor, the WebGPU-vs-WebAssembly equality tests (a training
# step's loss and gradients, greedy generation, the vocabulary split at a lowered binding limit), a
# short GRPO run on WebGPU that must learn, and the benchmarks on WebGPU. On a machine with a GPU it
# runs on the hardware adapter (all three model sizes); without one, on the software adapter (Mesa
# llvmpipe; the tiny model's training step only, --quick). Then one GRPO step with LoRA of a
# Qwen2.5-0.5B-config model (random weights, a real Qwen tokenizer: scripts/make-random-qwen.ts) on
# WebGPU, timed, with its peak memory; then llama.cpp's generation on its best device.
# The last line is a one-line summary. Usage: bash scripts/gpu-check.sh [--no-grpo] [--no-qwen]
set -uo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
log=$(mktemp -d)
r1() { node bin/r1.js "$@"; }

echo "== r1 doctor"
r1 doctor | tee "$log/doctor.txt"
r1 doctor --json > "$log/doctor.json" 2>/dev/null
read -r adapter kind < <(node -e '
  const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const a = d.adapters.find((x) => !x.software) ?? d.adapters[0];
  console.log(a ? `${a.name.replace(/\s+/g, "_")} ${a.software ? "software" : "hardware"}` : "none none");' "$log/doctor.json")
if [ "$kind" = none ]; then
  echo "gpu-check: FAIL - no WebGPU adapter at all (see r1 doctor above); ${SECONDS}s"
  exit 1
fi
export R1_ALLOW_SOFTWARE_GPU=1
# On the software adapter only the tiny model's training step is timed (its generation alone took
# over 2 minutes on llvmpipe, which would break the 5-minute budget; the equality test covers it).
if [ "$kind" = hardware ]; then sizes="tiny small base"; quick=""; whats="train generate"; else sizes="tiny"; quick="--quick"; whats="train"; fi

echo "== equality tests (webgpu vs wasm) and r1 doctor's tests on $adapter ($kind)"
no_grpo=0 no_qwen=0
for arg in "$@"; do
  case $arg in
    --no-grpo) no_grpo=1 ;;
    --no-qwen) no_qwen=1 ;;
    *) echo "gpu-check: unknown option $arg (want --no-grpo, --no-qwen)"; exit 2 ;;
  esac
done
tests="tests/webgpu-backend.test.ts tests/vocab-split.test.ts tests/doctor.test.ts"
[ $no_grpo = 1 ] || tests="$tests tests/webgpu-grpo.test.ts"
if R1_WEBGPU_SLOW=1 npx vitest run $tests 2>&1 | grep -vE '^(Warning: max|validation:| - While)' | tee "$log/tests.txt"; then :; fi
if grep -qE 'Tests +.*failed' "$log/tests.txt" || ! grep -qE 'Tests +.*passed' "$log/tests.txt"; then tests_ok=FAIL; else tests_ok=pass; fi
eq=$(grep -o 'max |d grad| [0-9.e+-]*' "$log/tests.txt" | head -1)
grpo=$(grep -o 'webgpu GRPO reward: .*' "$log/tests.txt" | head -1 | sed 's/webgpu GRPO reward: //')

echo "== benchmarks on webgpu ($sizes)"
bench=""
for size in $sizes; do
  for what in $whats; do
    line=$(r1 bench $what --backend webgpu --model $size $quick 2>/dev/null | grep '"tokens_per_s"' | head -1)
    echo "$line"
    tps=$(echo "$line" | node -e 'let s="";process.stdin.on("data",(c)=>s+=c).on("end",()=>{try{console.log(JSON.parse(s).tokens_per_s)}catch{console.log("failed")}})')
    bench="$bench $what/$size ${tps} tok/s;"
  done
done
# One GRPO step with LoRA (G = 4, 64 completion tokens, beta 0.04) of a 494 M-parameter model whose
# embedding (545 MB) is over most adapters' binding limit: it runs split (model/vocab-split.ts).
qwen=""
if [ $no_qwen = 0 ]; then
  echo "== one GRPO step with LoRA of a Qwen2.5-0.5B-config model on webgpu ($adapter)"
  ckpt=runs/qwen2.5-0.5b-random
  [ -f $ckpt/config.json ] || npx tsx scripts/make-random-qwen.ts --out $ckpt
  start=$SECONDS
  node scripts/peak-rss.mjs "$log/qwen-peak.txt" node bin/r1.js run recipes/grpo-qwen-lora.yaml --fresh \
    --set backend=webgpu --set allow_software_gpu=true --set output_dir=../runs/gpu-check \
    --set stages.grpo.model=../$ckpt 2>&1 | grep -vE '^(Warning: max|validation:| - While)' | tee "$log/qwen.txt"
  rc=${PIPESTATUS[0]}
  peak=$(cat "$log/qwen-peak.txt" 2>/dev/null || echo '?')
  if [ "$rc" = 0 ]; then qwen=" qwen2.5-0.5b LoRA GRPO step $((SECONDS - start))s, peak RSS ${peak} MB;"; else qwen=" qwen2.5-0.5b LoRA GRPO step FAILED (exit $rc, peak RSS ${peak} MB);"; tests_ok=FAIL; fi
fi

echo "== llama.cpp rollout engine (device auto: CUDA, Vulkan or CPU)"
line=$(r1 bench generate --engine llama.cpp --model tiny 2>/dev/null | grep '"tokens_per_s"' | head -1)
echo "$line"
llama=$(echo "$line" | node -e 'let s="";process.stdin.on("data",(c)=>s+=c).on("end",()=>{try{const j=JSON.parse(s);console.log(j.tokens_per_s+" tok/s on "+j.device)}catch{console.log("failed")}})')
bench="$bench llama.cpp generate/tiny ${llama};"

echo "gpu-check: adapter $adapter ($kind); tests $tests_ok (webgpu vs wasm $eq${grpo:+; GRPO reward $grpo});${bench}${qwen} $((SECONDS - t0))s"
[ "$tests_ok" = pass ]
