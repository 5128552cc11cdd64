#!/usr/bin/env bash
# Qwen2.5-0.5B at its real size on the CPU, in one command (minutes; not part of `npm test`):
#   1. a random-weight checkpoint with Qwen2.5-0.5B-Instruct's exact config and a real Qwen tokenizer
#      (scripts/make-random-qwen.ts), unless it is there already;
#   2. r1's greedy generation of a chat prompt on WebAssembly against the project's PyTorch reference
#      (tests/reference/hf_reference.py greedy): the tokens must be equal;
#   3. the memory plan of recipes/grpo-qwen-lora.yaml on that checkpoint (`r1 recipe` prints it);
#   4. one GRPO step with LoRA (G = 4, 64 completion tokens, beta 0.04, backend wasm) that must save
#      its PEFT adapter: seconds per step, the WebAssembly heap's high-water mark and the peak RSS,
#      beside the plan's estimate. A random model never earns the accuracy or format reward, so the
#      check swaps the format reward for a unigram repetition penalty, which differs between random
#      completions: the step's advantages, and so its adapter gradients, are not all zero.
# The last line is a one-line summary; exit 0 only when the tokens match and the step saved its adapter.
#   bash scripts/qwen-check.sh [--model DIR] [--tokens N] [--prompt TEXT]
set -uo pipefail
cd "$(dirname "$0")/.."
model=runs/qwen2.5-0.5b-random
tokens=32
prompt="What is 6 + 2?"
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    --prompt) prompt=$2; shift 2 ;;
    *) echo "qwen-check: unknown argument $1 (--model DIR, --tokens N, --prompt TEXT)" >&2; exit 2 ;;
  esac
done
model=$(realpath -m "$model")
python=${R1_PYTHON:-/usr/bin/python3}
log=$(mktemp -d)
t0=$SECONDS

echo "== checkpoint $model"
if [ ! -f "$model/model.safetensors" ]; then
  node --import tsx scripts/make-random-qwen.ts --out "$model" || exit 1
fi
node bin/r1.js inspect --model "$model" | node -e 'let s="";process.stdin.on("data",(c)=>(s+=c)).on("end",()=>{const j=JSON.parse(s);
  console.log(`${j.family}, ${j.parameters} parameters (${j.dtype}), ${j.layers} layers, hidden ${j.hidden_size}, heads ${j.heads}/${j.kv_heads}, vocabulary ${j.vocabulary}, tied ${j.tie_word_embeddings}`)})' || exit 1

echo "== greedy generation, $tokens tokens: r1 (wasm) and the PyTorch reference"
node bin/r1.js generate --model "$model" --prompt "$prompt" --template chat --temperature 0 \
  --max-new-tokens "$tokens" --backend wasm > "$log/r1.json" || { echo "qwen-check: FAIL - r1 generate failed"; exit 1; }
cat "$log/r1.json"
prompt_ids=$(node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(j.prompt_ids.join(","))' "$log/r1.json")
eos=$(node -e 'const g=require(process.argv[1]+"/generation_config.json");console.log([].concat(g.eos_token_id).join(","))' "$model")
if "$python" -c 'import torch' 2>/dev/null; then
  "$python" tests/reference/hf_reference.py greedy --model "$model" --ids "$prompt_ids" --max-new-tokens "$tokens" --eos "$eos" \
    > "$log/ref.json" || { echo "qwen-check: FAIL - the PyTorch reference failed"; exit 1; }
  cat "$log/ref.json"
  greedy=$(node -e '
    const fs = require("fs");
    const ours = JSON.parse(fs.readFileSync(process.argv[1], "utf8")).completion_ids;
    const ref = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
    const first = ours.findIndex((t, i) => t !== ref.tokens[i]);
    const n = Math.min(ours.length, ref.tokens.length);
    const minMargin = Math.min(...ref.margins);
    if (ours.length === ref.tokens.length && first < 0) console.log(`equal (${n} tokens; smallest top-1 margin ${minMargin.toPrecision(3)})`);
    else console.log(`DIFFER at token ${first < 0 ? n : first} of ${n} (reference margin there ${ref.margins[first < 0 ? n - 1 : first]})`);
  ' "$log/r1.json" "$log/ref.json")
else
  greedy="not checked ($python has no torch: apt-get install python3-torch, or R1_PYTHON=...)"
fi
echo "greedy tokens: $greedy"

echo "== memory plan"
set_model="stages.grpo.model=$model"
set_reward='stages.grpo.rewards.1={name: repetition, weight: 0.5, options: {ngram_size: 1}}'
set_out="output_dir=$PWD/runs/qwen-check"   # its own folder: the step starts fresh, so not over a real run
node bin/r1.js recipe recipes/grpo-qwen-lora.yaml --set "$set_model" --set "$set_reward" | tee "$log/plan.txt"
plan=$(grep -o 'main thread [0-9.]* GiB' "$log/plan.txt" | head -1 | grep -o '[0-9.]*')

echo "== one GRPO step with LoRA (G 4, 64 tokens, beta 0.04, wasm)"
node --import tsx scripts/qwen-grpo-step.ts recipes/grpo-qwen-lora.yaml --set "$set_model" --set "$set_reward" --set "$set_out" | tee "$log/step.json"
step=$(node -e '
  try {
    const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").pop());
    const gib = (m) => (m / 1024).toFixed(2);
    console.log(`${j.step_time_s.toFixed(0)} s/step (generate ${j.generate_s.toFixed(0)} s, update ${j.update_s.toFixed(0)} s), ` +
      `grad_norm ${j.grad_norm.toPrecision(3)}, wasm heap ${gib(j.wasm_heap_mib)} GiB, peak RSS ${gib(j.peak_rss_mib)} GiB, adapter ${j.adapter_saved ? "saved" : "MISSING"}`);
  } catch { console.log("FAILED"); }' "$log/step.json")

echo "qwen-check: greedy $greedy; GRPO LoRA step: $step; plan ${plan:-?} GiB; load $(cut -d' ' -f1 /proc/loadavg) on $(nproc) cores; $((SECONDS - t0))s"
case "$greedy" in equal*) ;; *) exit 1 ;; esac
case "$step" in *"adapter saved"*) ;; *) exit 1 ;; esac
