// Products of two 3-digit numbers: a task where a tool is the difference. A 1 M-parameter model
// cannot multiply 347 by 862 in its head, but it can copy the numbers into `print(347 * 862)`, run
// it, and copy the output into its answer. The tools recipe (recipes/grpo-tools-tiny.yaml) trains and
// evaluates on these prompts, and its pretraining corpus holds a share of tool-call traces
// (scripts/tools-data.ts) in the r1 form the multi-turn rollouts write (rollout/multi-turn.ts).
import { Rng } from '../engine/rng.ts';
import { applyTemplate } from './chat.ts';

/** One product `a * b = result`. */
export type Product = { a: number; b: number; result: number };

/** A GRPO / eval row. */
export type ProductRow = { prompt: string; answer: string; task: 'product' };

/** Both factors are drawn from 100-999. */
export const FACTOR_MIN = 100;
export const FACTOR_MAX = 999;

export function makeProduct(rng: Rng): Product {
  const span = FACTOR_MAX - FACTOR_MIN + 1;
  const a = FACTOR_MIN + rng.int(span),
    b = FACTOR_MIN + rng.int(span);
  return { a, b, result: a * b };
}

/** "What is 347 * 862?" */
export const productQuestion = (p: Product): string => `What is ${p.a} * ${p.b}?`;

/** A product's key whatever the order of its factors: what a held-out set keeps out of the rest. */
export const productKey = (p: Product): string => (p.a <= p.b ? `${p.a}*${p.b}` : `${p.b}*${p.a}`);

export function productRow(p: Product): ProductRow {
  return { prompt: productQuestion(p), answer: String(p.result), task: 'product' };
}

/** `n` products with distinct keys drawn with `seed`, none of whose key is in `exclude`. */
export function distinctProducts(seed: number, n: number, exclude: ReadonlySet<string> = new Set()): Product[] {
  const rng = new Rng(seed);
  const seen = new Set(exclude);
  const out: Product[] = [];
  while (out.length < n) {
    const p = makeProduct(rng);
    if (seen.has(productKey(p))) continue;
    seen.add(productKey(p));
    out.push(p);
  }
  return out;
}

/** The call a trace makes, as the model writes it after `<code>`. */
export const productCode = (p: Product): string => `print(${p.a} * ${p.b})`;

/** The text a tool call and its answer take in the r1 form, byte for byte as a multi-turn rollout
 * builds it: the model writes up to `</code>`, the runner appends `\n<output>\n...\n</output>\n`
 * (rollout/multi-turn.ts R1_FORMAT), then the model goes on. */
export const toolCallText = (p: Product): string => `<code>\n${productCode(p)}\n</code>\n<output>\n${p.result}\n</output>\n`;

/** The full reply: think block holding the call and its output, then the answer. */
export const toolReply = (p: Product): string => ` <think> ${toolCallText(p)}</think> <answer> ${p.result} </answer>`;

/** How the Assistant answers a product in the corpus: the full form (a call in the think block,
 * then the answer) in `full` of the traces; otherwise the call with the tags broken in one of
 * several ways, so GRPO has the form to find (as the sums corpus does, scripts/make-data.ts). */
export const TRACE_STYLE = { full: 0.35 };

/** The prompt template of the products (the recipe's `template:`): a chat turn as the corpus's plain
 * chats write it. Not the R1-Zero template: its 93 tokens of instructions would make a trace 140
 * tokens of which a dozen are the numbers the model must copy; a base pretrained on such traces
 * copied the first digit of each factor only (data/README.md). */
export const TOOLS_TEMPLATE = 'User: {prompt} Assistant:';

/** A tool-call trace: a product question in TOOLS_TEMPLATE and a reply that calls the tool. */
export function toolTraceDoc(rng: Rng, p: Product, after: () => string): string {
  const call = toolCallText(p),
    r = p.result;
  const reply =
    rng.next() < TRACE_STYLE.full
      ? toolReply(p)
      : [
          () => ` <think> ${call}</think> ${r}.${after()}`, // no answer block
          () => ` <think> ${call}</think> The answer is ${r}.${after()}`,
          () => ` <think> ${call}<answer> ${r} </answer>`, // think never closed
          () => ` ${call}</think> <answer> ${r} </answer>`, // think never opened
          () => ` ${call}The answer is ${r}.${after()}`, // no tags but the call
          () => ` <think> ${call}</think> <answer> ${r}.${after()}`, // answer never closed
        ][rng.int(6)]();
  return applyTemplate(TOOLS_TEMPLATE, productQuestion(p)) + reply;
}
