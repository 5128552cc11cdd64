// Multi-turn rollouts: the model writes code mid-reasoning, the code runs in the sandbox, its output
// is appended to the context, and generation goes on (R1 form: `<code>...</code>` then
// `<output>...</output>`), until the answer, max_turns calls, or max_completion_length tokens over the
// whole trajectory (tool output included: the context must fit the model).
//
// Batched by rounds, and a trajectory waiting on a tool holds up no other: a round generates the next
// turn of every trajectory that is ready (one generate() call per remaining budget, grouped by token
// length inside it); each call a turn ends with starts in the sandbox's processes at once, and its
// trajectory rejoins the ready ones when the output arrives. So the next round runs while calls are
// still out (a call that hangs to its timeout delays its own trajectory only). With nothing ready,
// the loop waits for the first answer, then a short while (gatherMs) for others, so that one fast
// answer does not start a round of one.
//
// Deterministic all the same: which trajectories share a round depends on how fast the calls answer,
// so nothing a trajectory samples may depend on its round-mates. Each trajectory draws from a random
// stream of its own (seeded from the step's rng in prompt order; generate()'s `rngs`), a finished row
// draws nothing more, and a row's logits do not depend on the other rows of its batch (no padding,
// rows grouped by length). The same seed gives the same trajectories however the calls interleave,
// with one caveat: the matrix products may round differently for another batch shape (the BLAS path
// does, by one float32 ulp), so log-probs agree to ~1e-7 relative and a token could flip only where a
// uniform draw lands within that rounding of a boundary of the cumulative distribution (about 1e-7
// per token). tests/grpo-tools.test.ts checks both matrix-product paths alone and batched, and two
// interleavings of the same calls.
//
// A trajectory's next turn re-prefills prompt + trajectory so far (no KV cache is kept between
// turns): simple and exact, at the cost of one prefill per turn. The log-prob of each model token is
// the one the sampler drew it with; the trainer's forward over the same token sequence recomputes
// it. Tool tokens carry log-prob 0 and modelTokens 0: the loss never sees them.
import { UserError } from '../errors.ts';
import { Rng } from '../engine/rng.ts';
import type { ChatMessage, ChatTemplate, ToolSchema } from '../model/chat-template.ts';
import { type Completion, type SamplingOptions, cutAtStop, generate } from '../model/generate.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import type { Transformer } from '../model/transformer.ts';
import type { ToolCall, Turn } from '../../rewards/types.ts';
import type { Rollouts, Sampling } from './rollouts.ts';
import { type CallRunner, type ToolName, ToolSession } from './tools.ts';

/** A stage's tools, as the recipe gives them (recipe/schema.ts). */
export type ToolsConfig = {
  names: ToolName[];
  max_turns: number;
  max_output_tokens: number;
  timeout_s: number;
  format: 'r1' | 'chat';
  /** A user module answering the calls instead of the sandbox (`./my-env.ts#Name`); null: the sandbox. */
  environment?: string | null;
};

/** The closing tag that ends a turn with a call (R1 form). */
export const CODE_CLOSE = '</code>';

/** A call read from a turn, or what is wrong with it (the model sees that). */
export type ParsedCall = { tool: string; code: string } | { error: string };

/** How calls are written and answered: the closing tag that ends a turn with a call (a stop string),
 * how the call is read, and the text around a call's output (its output goes between). */
export type CallFormat = {
  close: string;
  parse(turnText: string, tools: readonly string[]): ParsedCall;
  around(turnText: string): { open: string; close: string };
};

/** The r1 form: `<code>...</code>`, answered by `<output>...</output>`. The output block opens on a
 * new line; when the turn's last token already holds that newline (a tokenizer that merges `>\n`
 * into one token samples it with the `</code>`), the block does not repeat it, so the context is
 * `</code>\n<output>\n` as the model saw it in its corpus, not `</code>\n\n<output>`. */
export const R1_FORMAT: CallFormat = {
  close: CODE_CLOSE,
  parse: (text, tools) => parseR1Call(text, tools),
  around: (turnText) => {
    const open = '\n<output>\n';
    const at = turnText.lastIndexOf(CODE_CLOSE);
    const after = at < 0 ? '' : turnText.slice(at + CODE_CLOSE.length);
    return { open: after && open.startsWith(after) ? open.slice(after.length) : open, close: '\n</output>\n' };
  },
};

/** The closing tag of a call in the chat form (Qwen2.5, Qwen3, Hermes templates). */
export const TOOL_CALL_CLOSE = '</tool_call>';

/** The call a turn ends with in the chat form: `<tool_call>{"name": ..., "arguments": {"code": ...}}</tool_call>`
 * (arguments as an object or a JSON string, as templates and models write both). */
export function parseChatCall(text: string): ParsedCall {
  const end = text.lastIndexOf(TOOL_CALL_CLOSE);
  const open = text.lastIndexOf('<tool_call>', end);
  if (end < 0 || open < 0) return { error: `a ${TOOL_CALL_CLOSE} with no <tool_call> before it` };
  let call: unknown;
  try {
    call = JSON.parse(text.slice(open + '<tool_call>'.length, end));
  } catch (e) {
    return { error: `the call is not JSON (${(e as Error).message})` };
  }
  const { name, arguments: args } = (typeof call === 'object' && call !== null ? call : {}) as { name?: unknown; arguments?: unknown };
  if (typeof name !== 'string') return { error: 'the call has no "name" string' };
  let parsedArgs = args;
  if (typeof args === 'string') {
    try {
      parsedArgs = JSON.parse(args);
    } catch {
      return { error: '"arguments" is a string that is not JSON' };
    }
  }
  const code = (parsedArgs as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return { error: '"arguments" needs a "code" string' };
  return { tool: name, code };
}

/** The schemas of the tools for a chat template's `tools` argument. */
export function toolSchemas(names: readonly ToolName[]): ToolSchema[] {
  const language = { python: 'Python', javascript: 'JavaScript' } as const;
  return names.map((name) => ({
    type: 'function',
    function: {
      name,
      description: `Runs ${language[name]} code in a sandbox and returns what it prints. Variables persist across your calls.`,
      parameters: {
        type: 'object',
        properties: { code: { type: 'string', description: `the ${language[name]} code to run` } },
        required: ['code'],
      },
    },
  }));
}

/** Marks where a tool message's content goes in a rendering. */
const CONTENT_MARK = '\u0000r1-tool-output\u0000';

/** Stands for an assistant's content the template rewrites (see chatFormat). */
const ASSISTANT_MARK = 'r1-assistant-turn';

/** The chat form: calls as the template's tool calls, outputs as `tool` role messages rendered by the
 * model's own template. What is appended after a turn is what the template writes between the
 * assistant's content and the next generation prompt when a tool message follows: the assistant's
 * end of turn, the tool turn, and the opening of the assistant's next turn. A template may rewrite
 * an assistant's content (Qwen3 moves a `<think>` block it does not find in its own layout): the
 * model's tokens stay as they were sampled all the same, and what follows them is then read from
 * a rendering with a plain stand-in content. */
export function chatFormat(template: ChatTemplate, tools: readonly ToolSchema[]): CallFormat {
  const user: ChatMessage = { role: 'user', content: 'q' };
  const render = (content: string) =>
    template.render([user, { role: 'assistant', content }, { role: 'tool', content: CONTENT_MARK }], { addGenerationPrompt: true, tools });
  const promptLength = template.render([user], { addGenerationPrompt: true, tools }).length;
  /** What the template writes after `content` up to the tool's content, and after that; null when
   * the rendering does not hold the content as it is. */
  const tail = (content: string, full: string) => {
    const at = full.indexOf(content, Math.max(0, promptLength - 64));
    const mark = full.indexOf(CONTENT_MARK);
    return at < 0 || mark < at ? null : { between: full.slice(at + content.length, mark), close: full.slice(mark + CONTENT_MARK.length) };
  };
  return {
    close: TOOL_CALL_CLOSE,
    parse: (text) => parseChatCall(text),
    around: (turnText) => {
      const content = turnText.trimEnd();
      const found = tail(content, render(turnText)) ?? tail(ASSISTANT_MARK, render(ASSISTANT_MARK));
      if (!found)
        throw new UserError(
          `${template.source}: the chat template does not write an assistant's content, so a tool result cannot follow the model's own tokens: use tools.format r1`,
        );
      let between = found.between;
      const spaces = turnText.slice(content.length); // already in the context: the model wrote them
      if (between.startsWith(spaces)) between = between.slice(spaces.length);
      return { open: between, close: found.close };
    },
  };
}

/** The call format of a stage's tools. */
export function callFormat(tools: ToolsConfig, template: ChatTemplate | null): CallFormat {
  if (tools.format === 'r1') return R1_FORMAT;
  if (!template)
    throw new UserError("tools.format chat needs the model's own chat template (tokenizer_config.json chat_template): use tools.format r1");
  return chatFormat(template, toolSchemas(tools.names));
}

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

/** What a call's output says: what it printed, then its error. */
export function outputBody(call: ToolCall): string {
  const body = call.error ? `${call.output}${call.output && !call.output.endsWith('\n') ? '\n' : ''}Error: ${call.error}` : call.output;
  return body.replace(/\n+$/, '');
}

/** The text appended after a call in the R1 form: its output in an output block. */
export function outputBlock(call: ToolCall): string {
  const { open, close } = R1_FORMAT.around('');
  return open + outputBody(call) + close;
}

/** One trajectory under way. */
type Trajectory = {
  prompt: number[];
  /** Its own random stream (see the header). */
  rng: Rng;
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

/** What follows the kept part of a tool output cut to max_output_tokens tokens. */
export const TRUNCATED_MARK = '\n...(truncated)';

/** The tool-output tokens appended after a call: the output block's body cut to `maxOutputTokens`
 * tokens (the tags are always whole), then to the trajectory's remaining budget. */
function outputTokens(
  tok: Tokenizer,
  call: ToolCall,
  around: { open: string; close: string },
  maxOutputTokens: number,
): { ids: number[]; text: string } {
  const body = outputBody(call);
  const bodyIds = tok.encode(body);
  if (bodyIds.length <= maxOutputTokens) {
    const text = around.open + body + around.close;
    return { ids: tok.encode(text), text };
  }
  const cut = tok.decode(bodyIds.slice(0, maxOutputTokens)) + TRUNCATED_MARK;
  const text = around.open + cut + around.close;
  return { ids: tok.encode(text), text };
}

/** What samples a turn: one completion per context (the policy's generate(), llama.cpp; tests
 * script it). `opts.rngs` holds each context's own random stream: a sampler must draw row i from
 * rngs[i] only. An asynchronous sampler lets calls' answers be read while it samples. */
export type TurnSampler = (contexts: number[][], opts: SamplingOptions) => Completion[] | Promise<Completion[]>;

/** What samples a stage's turns: the policy itself on this thread, or an engine fed its weights at
 * each sync (llama.cpp), whose log-probs the trainer then recomputes (samplesElsewhere). */
export type TurnEngine = {
  readonly samplesElsewhere: boolean;
  sync(model: Transformer): void;
  sample: TurnSampler;
  close(): Promise<void>;
};

/** The policy on the calling thread (tfjs). */
export function mainThreadTurns(tok: Tokenizer): TurnEngine {
  let policy: Transformer | null = null;
  return {
    samplesElsewhere: false,
    sync: (model) => void (policy = model),
    sample: (contexts, opts) => {
      if (!policy) throw new Error('tool rollouts: generate() before sync(): sync the policy first');
      return generate(policy, tok, contexts, opts);
    },
    close: async () => {},
  };
}

/** How rounds are scheduled; tests inject a clock and watch the rounds. */
export type RoundSchedule = {
  /** With no trajectory ready, how long to wait after the first call answers for more answers
   * before a round starts (ms). */
  gatherMs?: number;
  /** Waits `ms` (tests: a fake clock). */
  sleep?: (ms: number) => Promise<void>;
  /** Told before each round: the trajectories it generates and those whose call is still out
   * (indices into the prompts). */
  onRound?: (round: { generating: number[]; waiting: number[] }) => void;
};

/** Wait for more answers after the first, when nothing is ready: a sandboxed call takes a few to
 * tens of ms, a round of generation much longer, so a short wait fills the round. */
const GATHER_MS = 20;

const realSleep = (ms: number) => new Promise<void>((res) => setTimeout(res, ms));

/** Lets the I/O that finished during a synchronous round (answers of calls) be read. */
const yieldToIo = () => new Promise<void>((res) => setImmediate(res));

/** Samples one trajectory per prompt with tool calls (R1 form or the chat form). See the header. */
export async function generateWithTools(
  policy: TurnSampler,
  tok: Tokenizer,
  runner: CallRunner,
  prompts: number[][],
  sampling: Sampling,
  rng: Rng,
  tools: ToolsConfig,
  format: CallFormat = R1_FORMAT,
  schedule: RoundSchedule = {},
): Promise<Completion[]> {
  const budget = sampling.maxNewTokens;
  const userStops = sampling.stopStrings ?? [];
  const stopTokens = new Set(sampling.stopTokens ?? []);
  const gatherMs = schedule.gatherMs ?? GATHER_MS;
  const sleep = schedule.sleep ?? realSleep;
  const rows: Trajectory[] = prompts.map((prompt) => ({
    prompt,
    rng: new Rng(rng.nextU32()),
    tokens: [],
    logprobs: [],
    modelTokens: [],
    turns: [],
    calls: 0,
    session: new ToolSession(),
    done: false,
    finishReason: 'length',
    text: '',
  }));
  let ready: Trajectory[] = [...rows];
  const waiting = new Map<Trajectory, Promise<void>>();
  const broken: unknown[] = []; // what a runner threw (a bug: runners answer failures with messages)
  const index = (r: Trajectory) => rows.indexOf(r);

  /** Starts a call; its trajectory rejoins the ready ones with the output appended. */
  const start = (row: Trajectory, parsed: ParsedCall) => {
    const answer = 'error' in parsed ? Promise.resolve(runner.malformed(parsed.error)) : runner.call(row.session, parsed.tool, parsed.code);
    const settled = answer
      .then((call) => {
        appendOutput(row, tok, call, format.around(row.turns[row.turns.length - 1].text), tools.max_output_tokens, budget);
        if (!row.done) ready.push(row);
      })
      // A runner answers failures with error messages, so an exception here is a bug (or a chat
      // template that cannot carry a tool turn): the rollout fails with it, at the loop's next look,
      // and no waiting promise is ever left rejected with nobody listening.
      .catch((error: unknown) => void broken.push(error));
    waiting.set(
      row,
      settled.finally(() => waiting.delete(row)),
    );
  };

  while (ready.length || waiting.size) {
    if (broken.length) throw broken[0];
    if (!ready.length) {
      await Promise.race(waiting.values());
      if (waiting.size) await Promise.race([Promise.all(waiting.values()), sleep(gatherMs)]);
      continue;
    }
    // In prompt order, so a round's groups do not depend on the order the answers came in.
    const round = ready.sort((a, b) => index(a) - index(b));
    ready = [];
    schedule.onRound?.({ generating: round.map(index), waiting: [...waiting.keys()].map(index).sort((a, b) => a - b) });
    for (const { row, parsed } of await generateTurn(policy, tok, round, sampling, tools, format, budget, userStops, stopTokens))
      start(row, parsed);
    await yieldToIo();
  }
  if (broken.length) throw broken[0];
  return rows.map((r) => ({
    tokens: r.tokens,
    logprobs: r.logprobs,
    finishReason: r.finishReason,
    text: cutAtStop(r.text, userStops),
    trajectory: { modelTokens: r.modelTokens, turns: r.turns },
  }));
}

/** Generates the next turn of each ready trajectory (rows with the same remaining budget in one
 * generate() call, each row drawing from its own stream); returns the calls the turns ended with. */
async function generateTurn(
  policy: TurnSampler,
  tok: Tokenizer,
  active: Trajectory[],
  sampling: Sampling,
  tools: ToolsConfig,
  format: CallFormat,
  budget: number,
  userStops: string[],
  stopTokens: Set<number>,
): Promise<{ row: Trajectory; parsed: ParsedCall }[]> {
  const calls: { row: Trajectory; parsed: ParsedCall }[] = [];
  const byRemaining = new Map<string, Trajectory[]>();
  for (const r of active) {
    const mayCall = r.calls < tools.max_turns;
    const key = `${budget - r.tokens.length}:${mayCall}`;
    byRemaining.set(key, [...(byRemaining.get(key) ?? []), r]);
  }
  for (const [key, group] of byRemaining) {
    const [remaining, mayCall] = [Number(key.split(':')[0]), key.endsWith('true')];
    const stopStrings = mayCall ? [...userStops, format.close] : userStops;
    const out = await policy(
      group.map((r) => [...r.prompt, ...r.tokens]),
      { ...sampling, maxNewTokens: remaining, stopStrings, rngs: group.map((r) => r.rng) },
    );
    group.forEach((r, j) => {
      const c = out[j];
      r.tokens.push(...c.tokens);
      r.logprobs.push(...c.logprobs);
      r.modelTokens.push(...c.tokens.map(() => 1));
      const endedByToken = c.finishReason === 'stop' && stopTokens.has(c.tokens[c.tokens.length - 1]);
      // The context holds every sampled token: the turn's text is their decoding (the stop token aside).
      const turnText = tok.decode(endedByToken ? c.tokens.slice(0, -1) : c.tokens);
      const endsWithCall = mayCall && c.finishReason === 'stop' && !endedByToken && cutAtStop(turnText, stopStrings).endsWith(format.close);
      if (endsWithCall && r.tokens.length < budget) {
        r.text += turnText;
        r.turns.push({ text: turnText, call: null });
        calls.push({ row: r, parsed: format.parse(cutAtStop(turnText, stopStrings), tools.names) });
        return;
      }
      r.text += c.text;
      r.turns.push({ text: c.text, call: null });
      r.done = true;
      r.finishReason = c.finishReason === 'stop' && !(mayCall && c.text.endsWith(format.close)) ? 'stop' : 'length';
    });
  }
  return calls;
}

/** Appends a call's output to its trajectory (tool tokens: log-prob 0, modelTokens 0); a trajectory
 * whose budget the output fills ends there ('length'). */
function appendOutput(
  row: Trajectory,
  tok: Tokenizer,
  call: ToolCall,
  around: { open: string; close: string },
  maxOutputTokens: number,
  budget: number,
): void {
  row.calls++;
  row.turns[row.turns.length - 1].call = call;
  const out = outputTokens(tok, call, around, maxOutputTokens);
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

/** Multi-turn rollouts: turns sampled by a turn engine (the policy on the calling thread by
 * default), calls answered by a runner (the sandbox, a user environment, reward workers). */
export class ToolRollouts implements Rollouts {
  readonly staleness = null;
  private readonly format: CallFormat;
  private readonly engine: TurnEngine;
  private readonly alongside: { takeMetrics(): Record<string, number>; close(): Promise<void> } | null;

  /** `engine`: what samples the turns (default: the policy on this thread). `alongside`: what else
   * serves the calls and closes with them (the cluster pool whose reward workers run them:
   * cluster/index.ts); its metrics join the step's. */
  constructor(
    private readonly tok: Tokenizer,
    private readonly tools: ToolsConfig,
    private readonly runner: CallRunner,
    opts: { engine?: TurnEngine; alongside?: { takeMetrics(): Record<string, number>; close(): Promise<void> } } = {},
  ) {
    this.format = callFormat(tools, tok.chatTemplate);
    this.engine = opts.engine ?? mainThreadTurns(tok);
    this.alongside = opts.alongside ?? null;
  }

  get samplesElsewhere(): boolean {
    return this.engine.samplesElsewhere;
  }

  sync(model: Transformer): void {
    this.engine.sync(model);
  }

  async generate(
    prompts: number[][],
    sampling: Sampling,
    rng: Rng,
    _align = 1,
    onPart?: (offset: number, part: Completion[]) => void,
  ): Promise<Completion[]> {
    const completions = await generateWithTools(this.engine.sample, this.tok, this.runner, prompts, sampling, rng, this.tools, this.format);
    onPart?.(0, completions);
    return completions;
  }

  /** The sandbox side of the step's calls (the per-trajectory counts come from the completions). */
  takeMetrics(): Record<string, number> {
    const m = this.runner.takeMetrics();
    return { ...this.alongside?.takeMetrics(), 'tools/timeouts': m.timeouts };
  }

  async close(): Promise<void> {
    try {
      await this.runner.close();
      await this.engine.close();
    } finally {
      await this.alongside?.close();
    }
  }
}
