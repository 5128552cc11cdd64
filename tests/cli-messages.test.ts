// What the r1 command says when it is used wrongly: every usage error (a missing or unknown option,
// an unknown command, a missing or wrong path) exits 2 and names the flag; a missing folder is called
// missing; a hint names an option the command has.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { buildProgram, main } from '../src/cli/main.ts';
import { encodePrompts } from '../src/stages/prompts.ts';

const root = mkdtempSync(join(tmpdir(), 'r1-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const notModel = join(root, 'not-a-model');
mkdirSync(notModel);
const data = join(root, 'rows.jsonl');
writeFileSync(data, '{"question": "What is 1 + 1?", "answer": "2"}\n');

/** `r1 <args>` in this process (what bin/r1.js runs): its exit code and what it wrote to stderr. */
async function r1(args: string[]): Promise<{ code: number; stderr: string }> {
  const err: string[] = [];
  const spies = [
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true)),
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true),
  ];
  try {
    return { code: await main(args), stderr: err.join('') };
  } finally {
    for (const s of spies) s.mockRestore();
  }
}

describe('r1 usage errors', () => {
  it.each([
    ['a required option left out', ['eval', '--model', notModel], /required option '--dataset <file>' not specified/],
    ['an unknown option', ['generate', '--model', notModel, '--bogus'], /unknown option '--bogus'/],
    ['an unknown command', ['bogus'], /unknown command 'bogus'/],
    ['a missing argument', ['run'], /missing required argument 'recipe'/],
    [
      'a model folder that does not exist',
      ['generate', '--model', join(root, 'nowhere'), '--prompt', 'x'],
      /^r1: --model \S+nowhere: no such folder \(/,
    ],
    ['the same in eval', ['eval', '--model', join(root, 'nowhere'), '--dataset', data], /^r1: --model \S+nowhere: no such folder/],
    ['the same in loss', ['loss', '--model', join(root, 'nowhere'), '--dataset', data], /^r1: --model \S+nowhere: no such folder/],
    [
      'a folder that is not a model',
      ['eval', '--model', notModel, '--dataset', data],
      /^r1: --model \S+not-a-model: the folder has no config\.json or tokenizer\.json/,
    ],
    ['a file given as the model folder', ['inspect', '--model', data], /^r1: --model \S+rows\.jsonl: not a folder/],
  ])('%s: exit 2, the flag named', async (_what, args, message) => {
    const res = await r1(args);
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toMatch(message);
    // a folder that is not there is never reported as a folder without a tokenizer
    if (args.some((a) => a.endsWith('nowhere'))) expect(res.stderr).not.toMatch(/tokenizer/);
  });

  it('help is not an error', async () => {
    expect((await r1(['eval', '--help'])).code).toBe(0);
  });
});

describe('hints name options that exist', () => {
  it('r1 eval on rows without the prompt field names the file and --prompt-field, an option r1 eval has', async () => {
    const program = await buildProgram();
    const evalFlags = program.commands.find((c) => c.name() === 'eval')!.options.map((o) => o.long);
    expect(evalFlags).toContain('--prompt-field');
    const tok = { documentStart: [], chatTemplate: null, encode: (t: string) => [...t].map((c) => c.charCodeAt(0)) };
    const room = { context: 512, newTokens: 8, newTokensField: 'max_new_tokens' };
    const rows = [{ question: 'What is 1 + 1?' }];
    // as r1 eval calls it
    const fromCli = () =>
      encodePrompts(
        rows,
        {
          name: 'eval',
          template: 'none',
          prompt_field: 'prompt',
          source: { where: data, promptFieldHint: 'set --prompt-field', newTokensHint: '--max-new-tokens' },
        },
        tok,
        room,
      );
    expect(fromCli).toThrow(`${data}, row 1: no string field 'prompt' (set --prompt-field)`);
    const hinted = /\(set (--[a-z-]+)\)/.exec(
      (() => {
        try {
          fromCli();
        } catch (e) {
          return (e as Error).message;
        }
        return '';
      })(),
    )![1];
    expect(evalFlags).toContain(hinted);
    // in a recipe stage, the hint is the stage's field
    expect(() => encodePrompts(rows, { name: 'grpo', template: 'none', prompt_field: 'prompt' }, tok, room)).toThrow(
      "stage 'grpo', row 1: no string field 'prompt' (set prompt_field)",
    );
    // and --prompt-field picks the field
    expect(encodePrompts(rows, { name: 'eval', template: 'none', prompt_field: 'question' }, tok, room)[0].text).toBe('What is 1 + 1?');
  });
});
