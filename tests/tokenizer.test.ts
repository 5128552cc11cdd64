import fc from 'fast-check';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SPECIAL_TOKENS, Tokenizer } from '../src/model/tokenizer.ts';

const corpus = [
  'The quick brown fox jumps over the lazy dog. 12 + 30 = 42.',
  '我们今天学习加法。十二加三十等于四十二。',
  'What is 7 + 5? <think> 7 + 5 = 12 </think> <answer> 12 </answer>',
  "It's a mixed 中英文 sentence, isn't it?\n\nNew paragraph.",
];
const texts = Array.from({ length: 200 }, (_, i) => corpus[i % corpus.length] + ` ${i}`);
const tok = Tokenizer.train(texts, { vocabSize: 400 });

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
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
      // Lone surrogates are not valid text; everything else must round-trip.
      if (/[\uD800-\uDFFF]/.test(s.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ""))) return true;
      return tok.decode(tok.encode(s)) === s;
    }), { numRuns: 500 });
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
    const json = tok.toJSON() as any;
    expect(json.model.type).toBe('BPE');
    expect(Object.keys(json.model.vocab).length + json.added_tokens.length).toBe(tok.vocabSize);
    expect(json.model.merges.length).toBe(tok.vocabSize - 256 - SPECIAL_TOKENS.length);
    expect(json.added_tokens.every((t: any) => t.special === true)).toBe(true);
    expect(json.pre_tokenizer.pretokenizers[1].type).toBe('ByteLevel');
    expect(json.decoder.type).toBe('ByteLevel');
  });

  it('names the file of a missing or corrupt tokenizer', () => {
    const dir = mkdtempSync(join(tmpdir(), 'r1-tok-'));
    const file = join(dir, 'tokenizer.json');
    expect(() => Tokenizer.load(file)).toThrow(/cannot read tokenizer .*tokenizer\.json/);
    writeFileSync(file, '{"model": {"type": "WordPiece"}}');
    expect(() => Tokenizer.load(file)).toThrow(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a byte-level BPE.*WordPiece`));
    writeFileSync(file, '{"model": ');
    expect(() => Tokenizer.load(dir)).toThrow(/not valid JSON/);
  });

  it('trains deterministically', () => {
    const again = Tokenizer.train(texts, { vocabSize: 400 });
    expect(JSON.stringify(again.toJSON())).toBe(JSON.stringify(tok.toJSON()));
  });
});
