// Multi-turn rollouts: the model writes code mid-reasoning, the code runs in the sandbox, its output
// is appended to the context, and generation goes on (R1 form: `<code>...</code>` then
// `<output>...</output>`), until the answer, max_turns calls, or max_completion_length tokens over the
// whole trajectory (tool output included: the context must fit the model).
//
// Batched by turns: every trajectory still running generates its next turn in one generate() call
// (grouped by token length inside it), then all the turn's tool calls run at once in the sandbox's
// processes. A trajectory's next turn re-prefills prompt + trajectory so far (no KV cache is kept
// between turns): simple and exact, at the cost of one prefill per turn. The log-prob of each model
// token is the one the sampler drew it with; the trainer's forward over the same token sequence
// recomputes it. Tool tokens carry log-prob 0 and modelTokens 0: the loss never sees them.
import type { Rng } from '../engine/rng.ts';
import { type Completion, type SamplingOptions, cutAtStop, generate } from '../model/generate.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import type { Transformer } from '../model/transformer.ts';
import type { ToolCall, Turn } from '../../rewards/types.ts';
import type { Rollouts, Sampling } from './rollouts.ts';
import { type ToolName, ToolRunner, ToolSession } from './tools.ts';

/** A stage's tools, as the recipe gives them (recipe/schema.ts). */
export type ToolsConfig = {
  names: ToolName[];
  max_turns: number;
  max_output_tokens: number;
  timeout_s: number;
  format: 'r1' | 'chat';
};

/** The closing tag that ends a turn with a call (R1 form). */
export const CODE_CLOSE = '</code>';

/** The call a turn ends with, from its text (R1 form): `<code>` runs the stage's first tool,
 * `<code lang="javascript">` (or lang=python) names one. A fenced block inside is unwrapped. A turn
 * ending in `</code>` with no `<code>` before it is a malformed call: the model sees why. */
export function parseR1Call(text: string, tools: readonly string[]): { tool: string; code: string } | { error: string } {
  const end = text.lastIndexOf(CODE_CLOSE);
  const open = text.lastIndexOf('<code', end);
  if (end < 0 || open < 0) return { error: `a ${CODE_CLOSE} with no <code> before it` };
  const tag = /^<code(?:\s+lang\s*=\s*"?([A-Za-z]+)"?)?\s*>/.exec(text.slice(open, end));
  if (!tag) return { error: 'a malformed <code> tag: write <code> or <code lang="python">' };
  const tool = tag[1]?.toLowerCase() ?? tools[0];
  let code = text.slice(open + tag[0].length, end);
  const fenced = /^\s*```[A-Za-z]*\n([\s\S]*?)```\s*$/.exec(code);
  if (fenced) code = fenced[1];
  return { tool, code: code.replace(/^\n+/, '') };
}

/** The text appended after a call (R1 form): its output, then its error, in an output block. */
export function outputBlock(call: ToolCall): string {
  const body = call.error ? `${call.output}${call.output && !call.output.endsWith('\n') ? '\n' : ''}Error: ${call.error}` : call.output;
  return `\n<output>\n${body.replace(/\n+$/, '')}\n</output>\n`;
}

/** One trajectory under way. */
type Trajectory = {
  prompt: number[];
  tokens: number[];
  logprobs: number[];
  modelTokens: number[];
  turns: Turn[];
  calls: number;
  session: ToolSession;
  done: boolean;
  finishReason: 'stop' | 'length';
  text: string;
};

/** The tool-output tokens appended after a call: the output block's body cut to `maxOutputTokens`
 * tokens (the tags are always whole), then to the trajectory's remaining budget. */
function outputTokens(tok: Tokenizer, call: ToolCall, maxOutputTokens: number): { ids: number[]; text: string } {
  const full = outputBlock(call);
  const ids = tok.encode(full);
  if (ids.length <= maxOutputTokens + 8) return { ids, text: full };
  const open = '\n<output>\n', close = '\n...(truncated)\n</output>\n';
  const bodyIds = tok.encode(full.slice(open.length, -'\n</output>\n'.length)).slice(0, maxOutputTokens);
  const text = open + tok.decode(bodyIds) + close;
  return { ids: [...tok.encode(open), ...bodyIds, ...tok.encode(close)], text };
}

/** What samples a turn: one completion per context (the policy's generate(); tests script it). */
export type TurnSampler = (contexts: number[][], opts: SamplingOptions) => Completion[];

/** Samples one trajectory per prompt with tool calls (R1 form). See the header. */
export async function generateWithTools(policy: TurnSampler, tok: Tokenizer, runner: ToolRunner, prompts: number[][], sampling: Sampling, rng: Rng, tools: ToolsConfig): Promise<Completion[]> {
  const budget = sampling.maxNewTokens;
  const userStops = sampling.stopStrings ?? [];
  const stopTokens = new Set(sampling.stopTokens ?? []);
  const rows: Trajectory[] = prompts.map((prompt) => ({
    prompt, tokens: [], logprobs: [], modelTokens: [], turns: [], calls: 0, session: new ToolSession(), done: false, finishReason: 'length', text: '',
  }));
  while (rows.some((r) => !r.done)) {
    const calls = generateTurn(policy, tok, rows.filter((r) => !r.done), sampling, rng, tools, budget, userStops, stopTokens);
    // The turn's calls run together, each trajectory in its own session.
    await Promise.all(calls.map(async ({ row, parsed }) => {
      const call: ToolCall = 'error' in parsed
        ? runner.malformed(parsed.error)
        : await runner.call(row.session, parsed.tool, parsed.code);
      appendOutput(row, tok, call, tools.max_output_tokens, budget);
    }));
  }
  return rows.map((r) => ({
    tokens: r.tokens, logprobs: r.logprobs, finishReason: r.finishReason, text: cutAtStop(r.text, userStops),
    trajectory: { modelTokens: r.modelTokens, turns: r.turns },
  }));
}

/** Generates the next turn of each running trajectory (rows with the same remaining budget in one
 * generate() call); returns the calls the turns ended with. */
function generateTurn(
  policy: TurnSampler, tok: Tokenizer, active: Trajectory[], sampling: Sampling, rng: Rng, tools: ToolsConfig,
  budget: number, userStops: string[], stopTokens: Set<number>,
): { row: Trajectory; parsed: ReturnType<typeof parseR1Call> }[] {
  const calls: { row: Trajectory; parsed: ReturnType<typeof parseR1Call> }[] = [];
  const byRemaining = new Map<string, Trajectory[]>();
  for (const r of active) {
    const mayCall = r.calls < tools.max_turns;
    const key = `${budget - r.tokens.length}:${mayCall}`;
    byRemaining.set(key, [...(byRemaining.get(key) ?? []), r]);
  }
  for (const [key, group] of byRemaining) {
    const [remaining, mayCall] = [Number(key.split(':')[0]), key.endsWith('true')];
    const stopStrings = mayCall ? [...userStops, CODE_CLOSE] : userStops;
    const out = policy(group.map((r) => [...r.prompt, ...r.tokens]), { ...sampling, maxNewTokens: remaining, stopStrings, rng });
    group.forEach((r, j) => {
      const c = out[j];
      r.tokens.push(...c.tokens);
      r.logprobs.push(...c.logprobs);
      r.modelTokens.push(...c.tokens.map(() => 1));
      const endedByToken = c.finishReason === 'stop' && stopTokens.has(c.tokens[c.tokens.length - 1]);
      // The context holds every sampled token: the turn's text is their decoding (the stop token aside).
      const turnText = tok.decode(endedByToken ? c.tokens.slice(0, -1) : c.tokens);
      const endsWithCall = mayCall && c.finishReason === 'stop' && !endedByToken && cutAtStop(turnText, stopStrings).endsWith(CODE_CLOSE);
      if (endsWithCall && r.tokens.length < budget) {
        r.text += turnText;
        r.turns.push({ text: turnText, call: null });
        calls.push({ row: r, parsed: parseR1Call(cutAtStop(turnText, stopStrings), tools.names) });
        return;
      }
      r.text += c.text;
      r.turns.push({ text: c.text, call: null });
      r.done = true;
      r.finishReason = c.finishReason === 'stop' && !(mayCall && c.text.endsWith(CODE_CLOSE)) ? 'stop' : 'length';
    });
  }
  return calls;
}

/** Appends a call's output to its trajectory (tool tokens: log-prob 0, modelTokens 0); a trajectory
 * whose budget the output fills ends there ('length'). */
function appendOutput(row: Trajectory, tok: Tokenizer, call: ToolCall, maxOutputTokens: number, budget: number): void {
  row.calls++;
  row.turns[row.turns.length - 1].call = call;
  const out = outputTokens(tok, call, maxOutputTokens);
  const room = budget - row.tokens.length;
  const ids = out.ids.slice(0, room);
  row.tokens.push(...ids);
  row.logprobs.push(...ids.map(() => 0));
  row.modelTokens.push(...ids.map(() => 0));
  row.text += ids.length === out.ids.length ? out.text : tok.decode(ids);
  if (row.tokens.length >= budget) {
    row.done = true;
    row.finishReason = 'length';
  }
}

/** Multi-turn rollouts sampled by the policy on the calling thread, tools in the sandbox. */
export class ToolRollouts implements Rollouts {
  readonly samplesElsewhere = false;
  readonly staleness = null;
  private policy: Transformer | null = null;

  constructor(private readonly tok: Tokenizer, private readonly tools: ToolsConfig, private readonly runner: ToolRunner) {}

  sync(model: Transformer): void {
    this.policy = model;
  }

  async generate(prompts: number[][], sampling: Sampling, rng: Rng, _align = 1, onPart?: (offset: number, part: Completion[]) => void): Promise<Completion[]> {
    if (!this.policy) throw new Error('tool rollouts: generate() before sync(): sync the policy first');
    const policy = this.policy;
    const completions = await generateWithTools((contexts, opts) => generate(policy, this.tok, contexts, opts), this.tok, this.runner, prompts, sampling, rng, this.tools);
    onPart?.(0, completions);
    return completions;
  }

  /** The sandbox side of the step's calls (the per-trajectory counts come from the completions). */
  takeMetrics(): Record<string, number> {
    const m = this.runner.takeMetrics();
    return { 'tools/timeouts': m.timeouts };
  }

  close(): Promise<void> {
    return this.runner.close();
  }
}
