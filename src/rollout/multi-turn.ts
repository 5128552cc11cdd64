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
import { UserError } from '../errors.ts';
import type { Rng } from '../engine/rng.ts';
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

/** The chat form: calls as the template's tool calls, outputs as `tool` role messages rendered by the
 * model's own template. What is appended after a turn is what the template writes between the
 * assistant's content and the next generation prompt when a tool message follows: the assistant's
 * end of turn, the tool turn, and the opening of the assistant's next turn. */
export function chatFormat(template: ChatTemplate, tools: readonly ToolSchema[]): CallFormat {
  return {
    close: TOOL_CALL_CLOSE,
    parse: (text) => parseChatCall(text),
    around: (turnText) => {
      const user: ChatMessage = { role: 'user', content: 'q' };
      const prompt = template.render([user], { addGenerationPrompt: true, tools });
      const content = turnText.trimEnd();
      const full = template.render([user, { role: 'assistant', content: turnText }, { role: 'tool', content: CONTENT_MARK }], {
        addGenerationPrompt: true,
        tools,
      });
      const at = full.indexOf(content, Math.max(0, prompt.length - 64));
      const mark = full.indexOf(CONTENT_MARK);
      if (at < 0 || mark < at)
        throw new UserError(
          `${template.source}: the chat template does not write an assistant's content as it is, so a tool result cannot follow the model's own tokens: use tools.format r1`,
        );
      let between = full.slice(at + content.length, mark);
      const spaces = turnText.slice(content.length); // already in the context: the model wrote them
      if (between.startsWith(spaces)) between = between.slice(spaces.length);
      return { open: between, close: full.slice(mark + CONTENT_MARK.length) };
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
  const cut = tok.decode(bodyIds.slice(0, maxOutputTokens)) + '\n...(truncated)';
  const text = around.open + cut + around.close;
  return { ids: tok.encode(text), text };
}

/** What samples a turn: one completion per context (the policy's generate(); tests script it). */
export type TurnSampler = (contexts: number[][], opts: SamplingOptions) => Completion[];

/** Samples one trajectory per prompt with tool calls (R1 form). See the header. */
export async function generateWithTools(
  policy: TurnSampler,
  tok: Tokenizer,
  runner: CallRunner,
  prompts: number[][],
  sampling: Sampling,
  rng: Rng,
  tools: ToolsConfig,
  format: CallFormat = R1_FORMAT,
): Promise<Completion[]> {
  const budget = sampling.maxNewTokens;
  const userStops = sampling.stopStrings ?? [];
  const stopTokens = new Set(sampling.stopTokens ?? []);
  const rows: Trajectory[] = prompts.map((prompt) => ({
    prompt,
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
  while (rows.some((r) => !r.done)) {
    const calls = generateTurn(
      policy,
      tok,
      rows.filter((r) => !r.done),
      sampling,
      rng,
      tools,
      format,
      budget,
      userStops,
      stopTokens,
    );
    // The turn's calls run together, each trajectory in its own session.
    await Promise.all(
      calls.map(async ({ row, parsed }) => {
        const call: ToolCall =
          'error' in parsed ? runner.malformed(parsed.error) : await runner.call(row.session, parsed.tool, parsed.code);
        appendOutput(row, tok, call, format.around(row.turns[row.turns.length - 1].text), tools.max_output_tokens, budget);
      }),
    );
  }
  return rows.map((r) => ({
    tokens: r.tokens,
    logprobs: r.logprobs,
    finishReason: r.finishReason,
    text: cutAtStop(r.text, userStops),
    trajectory: { modelTokens: r.modelTokens, turns: r.turns },
  }));
}

/** Generates the next turn of each running trajectory (rows with the same remaining budget in one
 * generate() call); returns the calls the turns ended with. */
function generateTurn(
  policy: TurnSampler,
  tok: Tokenizer,
  active: Trajectory[],
  sampling: Sampling,
  rng: Rng,
  tools: ToolsConfig,
  format: CallFormat,
  budget: number,
  userStops: string[],
  stopTokens: Set<number>,
): { row: Trajectory; parsed: ParsedCall }[] {
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
    const out = policy(
      group.map((r) => [...r.prompt, ...r.tokens]),
      { ...sampling, maxNewTokens: remaining, stopStrings, rng },
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

/** Multi-turn rollouts sampled by the policy on the calling thread, tools in the sandbox. */
export class ToolRollouts implements Rollouts {
  readonly samplesElsewhere = false;
  readonly staleness = null;
  private policy: Transformer | null = null;

  private readonly format: CallFormat;

  constructor(
    private readonly tok: Tokenizer,
    private readonly tools: ToolsConfig,
    private readonly runner: CallRunner,
  ) {
    this.format = callFormat(tools, tok.chatTemplate);
  }

  sync(model: Transformer): void {
    this.policy = model;
  }

  async generate(
    prompts: number[][],
    sampling: Sampling,
    rng: Rng,
    _align = 1,
    onPart?: (offset: number, part: Completion[]) => void,
  ): Promise<Completion[]> {
    if (!this.policy) throw new Error('tool rollouts: generate() before sync(): sync the policy first');
    const policy = this.policy;
    const completions = await generateWithTools(
      (contexts, opts) => generate(policy, this.tok, contexts, opts),
      this.tok,
      this.runner,
      prompts,
      sampling,
      rng,
      this.tools,
      this.format,
    );
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
