import fc from 'fast-check';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PRETOKENIZE_PATTERN, SPECIAL_TOKENS, Tokenizer, CJK_PRETOKENIZE_PATTERN } from '../src/model/tokenizer.ts';

/** The fields of a tokenizer.json (Tokenizer.toJSON) these tests read or edit. */
type TokenizerJson = {
  model: { type: string; vocab: Record<string, number>; merges: (string | string[])[] };
  added_tokens: { special: boolean }[];
  pre_tokenizer: { pretokenizers: { type: string; pattern: { Regex: string } }[] };
  decoder: { type: string };
};
const jsonOf = (t: Tokenizer) => t.toJSON() as TokenizerJson;

const corpus = [
  'The quick brown fox jumps over the lazy dog. 12 + 30 = 42.',
  '我们今天学习加法。十二加三十等于四十二。',
  'What is 7 + 5? <think> 7 + 5 = 12 </think> <answer> 12 </answer>',
  "It's a mixed 中英文 sentence, isn't it?\n\nNew paragraph.",
];
const texts = Array.from({ length: 200 }, (_, i) => corpus[i % corpus.length] + ` ${i}`);
const tok = Tokenizer.train(texts, { vocabSize: 400 });

/** Textbook BPE: recount every pair after each merge (slow, obviously right). Returns the merges. */
function referenceMerges(texts: string[], vocabSize: number): string[] {
  const re = new RegExp(PRETOKENIZE_PATTERN, 'gu');
  const counts = new Map<string, number>();
  const specials = /<\|[a-z_]+\|>|<\/?(?:think|answer)>/;
  for (const t of texts) for (const part of t.split(specials)) for (const [w] of part.matchAll(re)) counts.set(w, (counts.get(w) ?? 0) + 1);
  const byteChar = jsonOf(tok).model.vocab;
  const chars: string[] = [];
  for (const [c, id] of Object.entries(byteChar)) if (id < 256) chars[id] = c;
  let words = [...counts].map(([w, c]) => ({ ids: Array.from(new TextEncoder().encode(w)), c }));
  const symbols = [...chars];
  const merges: string[] = [];
  while (symbols.length < vocabSize - SPECIAL_TOKENS.length) {
    const pairs = new Map<string, { a: number; b: number; n: number }>();
    for (const w of words)
      for (let i = 0; i + 1 < w.ids.length; i++) {
        const key = `${w.ids[i]},${w.ids[i + 1]}`;
        const p = pairs.get(key) ?? { a: w.ids[i], b: w.ids[i + 1], n: 0 };
        p.n += w.c;
        pairs.set(key, p);
      }
    let best: { a: number; b: number; n: number } | undefined;
    for (const p of pairs.values())
      if (!best || p.n > best.n || (p.n === best.n && (p.a < best.a || (p.a === best.a && p.b < best.b)))) best = p;
    if (!best || best.n < 2) break;
    const { a, b } = best;
    let id = symbols.indexOf(symbols[a] + symbols[b]);
    if (id < 0) id = symbols.push(symbols[a] + symbols[b]) - 1;
    merges.push(`${symbols[a]} ${symbols[b]}`);
    words = words.map(({ ids, c }) => {
      const out: number[] = [];
      for (let i = 0; i < ids.length; i++) {
        if (ids[i] === a && ids[i + 1] === b) {
          out.push(id);
          i++;
        } else out.push(ids[i]);
      }
      return { ids: out, c };
    });
  }
  return merges;
}

describe('byte-level BPE tokenizer', () => {
  it('learns merges that shorten English and Chinese text', () => {
    expect(tok.vocabSize).toBeGreaterThan(256 + SPECIAL_TOKENS.length);
    expect(tok.vocabSize).toBeLessThanOrEqual(400);
    for (const s of corpus.slice(0, 2)) expect(tok.encode(s).length).toBeLessThan(new TextEncoder().encode(s).length / 2);
  });

  it('round-trips any Unicode string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 60 }), (s) => tok.decode(tok.encode(s)) === s),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        // Lone surrogates are not valid text; everything else must round-trip.
        if (/[\uD800-\uDFFF]/.test(s.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ''))) return true;
        return tok.decode(tok.encode(s)) === s;
      }),
      { numRuns: 500 },
    );
    for (const s of corpus) expect(tok.decode(tok.encode(s))).toBe(s);
  });

  it('maps special tokens to single ids, and digits one by one', () => {
    for (const s of SPECIAL_TOKENS) expect(tok.encode(s)).toEqual([tok.tokenId(s)]);
    expect(tok.encode('<think>x</think>')[0]).toBe(tok.tokenId('<think>'));
    expect(tok.encode('2024').length).toBe(4);
    expect(tok.decode(tok.encode('a<answer>1</answer>'), { skipSpecial: true })).toBe('a1');
    expect(tok.eosId).toBe(tok.tokenId('<|end_of_text|>'));
  });

  it('decodes a cut UTF-8 sequence without throwing', () => {
    const ids = Tokenizer.train(['x'], { vocabSize: 300 }).encode('世');
    expect(ids.length).toBe(3); // three bytes, no merges
    expect(() => tok.decode(ids.slice(0, 2))).not.toThrow();
    expect(tok.decode(ids.slice(0, 2))).toContain('\uFFFD');
  });

  it('saves a Hugging Face tokenizer.json and loads the same encodings', () => {
    const dir = mkdtempSync(join(tmpdir(), 'r1-tok-'));
    tok.save(dir);
    const loaded = Tokenizer.load(dir);
    for (const s of corpus) expect(loaded.encode(s)).toEqual(tok.encode(s));
    const json = jsonOf(tok);
    expect(json.model.type).toBe('BPE');
    expect(Object.keys(json.model.vocab).length + json.added_tokens.length).toBe(tok.vocabSize);
    expect(json.model.merges.length).toBe(tok.vocabSize - 256 - SPECIAL_TOKENS.length);
    expect(json.added_tokens.every((t) => t.special === true)).toBe(true);
    expect(json.pre_tokenizer.pretokenizers[1].type).toBe('ByteLevel');
    expect(json.decoder.type).toBe('ByteLevel');
  });

  it('names the file of a missing or corrupt tokenizer', () => {
    const dir = mkdtempSync(join(tmpdir(), 'r1-tok-'));
    const file = join(dir, 'tokenizer.json');
    expect(() => Tokenizer.load(file)).toThrow(/cannot read tokenizer .*tokenizer\.json/);
    writeFileSync(file, '{"model": {"type": "WordPiece"}}');
    expect(() => Tokenizer.load(file)).toThrow(
      new RegExp(
        `${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: tokenizer model "WordPiece" is not supported: r1kit reads byte-level BPE`,
      ),
    );
    writeFileSync(file, '{"model": ');
    expect(() => Tokenizer.load(dir)).toThrow(/tokenizer\.json: not valid JSON/);
    const json = jsonOf(tok);
    json.model.merges[3] = 'no such';
    writeFileSync(file, JSON.stringify(json));
    expect(() => Tokenizer.load(file)).toThrow(/tokenizer\.json: .*model\.merges\[3\] "no such"/);
  });

  it('encodes exactly as Hugging Face tokenizers does from the same tokenizer.json', () => {
    // Fixture: a tokenizer.json saved by this class, and the ids HF tokenizers (Python) gave for each text.
    const dir = fileURLToPath(new URL('./fixtures/tokenizer/', import.meta.url));
    const hf = Tokenizer.load(dir);
    const { samples } = JSON.parse(readFileSync(join(dir, 'hf-encodings.json'), 'utf8')) as { samples: { text: string; ids: number[] }[] };
    expect(samples.length).toBeGreaterThan(50);
    for (const { text, ids } of samples) {
      expect(hf.encode(text)).toEqual(ids);
      expect(hf.decode(ids)).toBe(text);
    }
  });

  it('loads merges written as pairs (newer HF format)', () => {
    const json = jsonOf(tok);
    json.model.merges = json.model.merges.map((m) => (m as string).split(' '));
    const loaded = Tokenizer.fromJSON(json);
    for (const s of corpus) expect(loaded.encode(s)).toEqual(tok.encode(s));
    expect(loaded.vocabSize).toBe(tok.vocabSize);
  });

  it('learns the same merges as textbook BPE (incremental pair counts are exact)', () => {
    const m = (t: Tokenizer) => jsonOf(t).model.merges;
    expect(m(Tokenizer.train(texts, { vocabSize: 400 }))).toEqual(referenceMerges(texts, 400));
    // Runs of one letter, alternations and shared CJK bytes stress overlapping and neighbouring merges.
    const word = fc.array(fc.constantFrom('a', 'b', 'ab', '中', '文', ' ', '1'), { maxLength: 12 }).map((p) => p.join(''));
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 12 }), fc.integer({ min: 270, max: 300 }), (ts, v) => {
        expect(m(Tokenizer.train(ts, { vocabSize: v }))).toEqual(referenceMerges(ts, v));
      }),
      { numRuns: 150 },
    );
  });

  it('encodes with the learned merges as a plain BPE would', () => {
    // After training, every corpus word must come out as the reference BPE merges it.
    const merges = jsonOf(tok).model.merges as string[];
    const rank = new Map(merges.map((x, i) => [x, i]));
    const vocab = jsonOf(tok).model.vocab;
    const byteChar: string[] = [];
    for (const [c, id] of Object.entries(vocab)) if (id < 256) byteChar[id] = c;
    const re = new RegExp(PRETOKENIZE_PATTERN, 'gu');
    for (const text of corpus)
      for (const [w] of text.replace(/<\/?(think|answer)>/g, '').matchAll(re)) {
        let parts = Array.from(new TextEncoder().encode(w), (b) => byteChar[b]);
        for (;;) {
          let best = -1;
          for (let i = 0; i + 1 < parts.length; i++) {
            const r = rank.get(`${parts[i]} ${parts[i + 1]}`);
            if (r !== undefined && (best < 0 || r < rank.get(`${parts[best]} ${parts[best + 1]}`)!)) best = i;
          }
          if (best < 0) break;
          parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)];
        }
        expect(tok.encode(w)).toEqual(parts.map((p) => vocab[p]));
      }
  });

  it('trains deterministically', () => {
    const again = Tokenizer.train(texts, { vocabSize: 400 });
    expect(JSON.stringify(again.toJSON())).toBe(JSON.stringify(tok.toJSON()));
  });
});

describe('split_cjk pre-tokenizer', () => {
  const texts = Array.from(
    { length: 200 },
    (_, i) => `李明有${i % 10}本书。然后李明送出了${i % 7}本。Li Ming has ${i} books. 王芳又得到${i % 5}个苹果。`,
  );
  const hanRun = /\p{Script=Han}{2,}/u;

  it('never merges two Chinese characters into one token; the default pattern does', () => {
    const split = Tokenizer.train(texts, { vocabSize: 400, pattern: CJK_PRETOKENIZE_PATTERN });
    const plain = Tokenizer.train(texts, { vocabSize: 400 });
    const tokens = (t: Tokenizer) => Array.from({ length: t.vocabSize }, (_, id) => t.decode([id]));
    expect(tokens(split).filter((t) => hanRun.test(t))).toEqual([]);
    expect(tokens(plain).some((t) => hanRun.test(t))).toBe(true);
    // One token per character, shared by every name and sentence it appears in.
    const ids = split.encode('然后李明送出了3本。');
    expect(ids.map((i) => split.decode([i]))).toEqual(['然', '后', '李', '明', '送', '出', '了', '3', '本', '。']);
    // English is pre-tokenized as before: words with their leading space, digits one by one.
    const pieces = (t: Tokenizer, s: string) => t.encode(s).map((i) => t.decode([i]));
    expect(pieces(split, 'Li Ming has 12 books.')).toEqual(['Li', ' Ming', ' has', ' ', '1', '2', ' books', '.']);
  });

  it('round-trips every string and keeps its pattern through tokenizer.json', () => {
    const tok = Tokenizer.train(texts, { vocabSize: 400, pattern: CJK_PRETOKENIZE_PATTERN });
    const again = Tokenizer.fromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
    expect(jsonOf(again).pre_tokenizer.pretokenizers[0].pattern.Regex).toBe(CJK_PRETOKENIZE_PATTERN);
    for (const s of ['汤姆有5个苹果，又买了3个。', 'mixed 中文 and English 12 + 3 = 15。', '日本語のテキスト', '🙂 emoji']) {
      expect(tok.decode(tok.encode(s))).toBe(s);
      expect(again.encode(s)).toEqual(tok.encode(s));
    }
  });
});
