// r1kit's own BPE encoder, which encodes the tokenizer.json files r1kit's trainer writes (about 15x
// faster than @huggingface/tokenizers on them): it must give the library's ids on the shipped
// corpora and on awkward text, and must not take files in any other layout.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CJK_PRETOKENIZE_PATTERN, PRETOKENIZE_PATTERN, SPECIAL_TOKENS, Tokenizer } from '../src/model/tokenizer.ts';

const texts = (file: string) =>
  readFileSync(new URL(`../${file}`, import.meta.url), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).text as string);
/** Every stride-th row: the whole corpus through the library would take ~10 s. */
const everyNth = <T>(xs: T[], stride: number) => xs.filter((_, i) => i % stride === 0);

const AWKWARD = [
  '',
  ' ',
  '   leading and trailing   ',
  'tabs\tand\r\nwindows\r\nlines\n\n\nand blank ones',
  'x'.repeat(300),
  '<think>2+2</think><answer>4</answer>',
  '<|user|><|user|>hi<|end_of_turn|>',
  '<think<think>>',
  '</think',
  'a<|pad|>b',
  "It's we'll they're I'VE",
  'numbers 1234567890 and 3.14159e-10',
  'emoji 🙂🙂 and 👩‍💻',
  '中文的句子，没有空格。然后李明送出了',
  'mixed 中文 and English, ümlauts, Ελληνικά',
  'lone surrogate \ud800 here',
  '\u0000 control \u0007 bytes',
  '  \n  \n',
];

function expectLibraryIds(tok: Tokenizer, rows: string[]): void {
  let differing = 0,
    tokens = 0;
  const first: string[] = [];
  for (const row of rows) {
    const own = tok.encode(row),
      lib = tok.libraryEncode(row);
    tokens += lib.length;
    if (own.length !== lib.length || own.some((id, i) => id !== lib[i])) {
      differing++;
      if (first.length < 3) first.push(JSON.stringify(row.slice(0, 80)));
    }
  }
  expect(tokens).toBeGreaterThan(0);
  expect(differing, `rows encoded differently, e.g. ${first.join(', ')}`).toBe(0);
}

describe("r1kit's own BPE encoder", () => {
  it("gives the library's ids over data/corpus.jsonl with a tokenizer trained on it (pretrain-tiny)", () => {
    const corpus = texts('data/corpus.jsonl');
    const tok = Tokenizer.fromJSON(Tokenizer.train(corpus, { vocabSize: 512, pattern: PRETOKENIZE_PATTERN }).toJSON());
    expect(tok.fastEncode).toBe(true);
    expectLibraryIds(tok, [...everyNth(corpus, 8), ...AWKWARD]);
  });

  it("gives the library's ids over data/r1/corpus.jsonl with split_cjk (the r1 recipes' tokenizer)", () => {
    const corpus = texts('data/r1/corpus.jsonl');
    const tok = Tokenizer.fromJSON(Tokenizer.train(corpus, { vocabSize: 1024, pattern: CJK_PRETOKENIZE_PATTERN }).toJSON());
    expect(tok.fastEncode).toBe(true);
    expectLibraryIds(tok, [...everyNth(corpus, 8), ...AWKWARD]);
  });

  it('maps special tokens to their ids, and merges across nothing else', () => {
    const tok = Tokenizer.train(['the cat sat on the mat'], { vocabSize: 280 });
    const think = tok.tokenId('<think>')!,
      close = tok.tokenId('</think>')!;
    expect(tok.encode('<think></think>')).toEqual([think, close]);
    expect(tok.encode('<think>the</think>').at(0)).toBe(think);
    expect(tok.decode(tok.encode('the cat <answer>mat</answer>'))).toBe('the cat <answer>mat</answer>');
  });

  it('leaves any other layout to the library: a normalizer, a prefix space, a non-special added token', () => {
    const trained = Tokenizer.train(['the cat sat on the mat'], { vocabSize: 280, specialTokens: SPECIAL_TOKENS }).toJSON() as Record<
      string,
      unknown
    >;
    const variants: Record<string, unknown>[] = [
      { ...trained, normalizer: { type: 'NFC' } },
      { ...trained, decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: false } },
      { ...trained, model: { ...(trained.model as object), ignore_merges: true } },
      {
        ...trained,
        added_tokens: [
          ...(trained.added_tokens as object[]),
          { id: 400, content: 'cat', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false },
        ],
      },
    ];
    for (const v of variants) {
      const tok = Tokenizer.fromJSON(v);
      expect(tok.fastEncode, JSON.stringify(v).slice(0, 60)).toBe(false);
      expect(tok.encode('the cat')).toEqual(tok.libraryEncode('the cat'));
    }
  });
});
