// Byte-level BPE (GPT-2 / Llama 3 style): text is split into pre-tokens by a regex, each pre-token's
// UTF-8 bytes become symbols, and learned merges join frequent adjacent pairs. Every string
// round-trips, in any language. Saved as Hugging Face `tokenizer.json`, which other tools read.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../engine/safetensors.ts';

export const SPECIAL_TOKENS: readonly string[] = [
  '<|begin_of_text|>', '<|end_of_text|>', '<|pad|>', '<|system|>', '<|user|>', '<|assistant|>', '<|end_of_turn|>',
  '<think>', '</think>', '<answer>', '</answer>',
];

/** Pre-tokenizer: contractions, letter runs (with one leading non-letter), single digits (so numbers
 * are learned digit by digit, as DeepSeek's tokenizers do), punctuation runs, newlines, spaces. */
export const PRETOKENIZE_PATTERN =
  "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** GPT-2's reversible map from bytes to printable characters (so merges are plain strings). */
function byteToChar(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(keep.includes(b) ? b : 256 + extra++);
  return out;
}
const BYTE_CHAR = byteToChar();
const CHAR_BYTE = new Map(BYTE_CHAR.map((c, b) => [c, b]));
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

export class Tokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  private readonly vocab: Map<string, number>;
  private readonly tokens: string[];
  private readonly ranks: Map<string, number>;
  private readonly specials: Map<string, number>;
  private readonly specialPattern: RegExp | null;
  private readonly splitter = new RegExp(PRETOKENIZE_PATTERN, 'gu');
  private readonly cache = new Map<string, number[]>();

  /** vocab: token string -> id; merges in rank order ("a b"); specials appended to the vocab. */
  constructor(vocab: Map<string, number>, merges: readonly string[], specials: readonly string[]) {
    this.vocab = new Map(vocab);
    this.ranks = new Map(merges.map((m, i) => [m, i]));
    this.specials = new Map();
    let next = Math.max(-1, ...this.vocab.values()) + 1;
    for (const s of specials) {
      const id = this.vocab.get(s) ?? next++;
      this.vocab.set(s, id);
      this.specials.set(s, id);
    }
    this.tokens = [];
    for (const [t, id] of this.vocab) this.tokens[id] = t;
    this.specialPattern = this.specials.size
      ? new RegExp(`(${[...this.specials.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp).join('|')})`, 'g')
      : null;
    const id = (t: string) => this.specials.get(t) ?? -1;
    this.bosId = id('<|begin_of_text|>');
    this.eosId = id('<|end_of_text|>');
    this.padId = id('<|pad|>') >= 0 ? id('<|pad|>') : this.eosId;
  }

  /** Learns merges from texts until the vocabulary (bytes + merges + specials) reaches vocabSize. */
  static train(texts: Iterable<string>, opts: { vocabSize: number; specialTokens?: readonly string[]; minFrequency?: number }): Tokenizer {
    const specials = opts.specialTokens ?? SPECIAL_TOKENS;
    const numMerges = opts.vocabSize - 256 - specials.length;
    if (numMerges < 0) throw new UserError(`vocab_size ${opts.vocabSize} is below the 256 bytes + ${specials.length} special tokens`);
    const splitter = new RegExp(PRETOKENIZE_PATTERN, 'gu');
    const specialRe = new RegExp(specials.map(escapeRegExp).join('|') || '(?!)', 'g');
    // Count pre-token words once.
    const wordCounts = new Map<string, number>();
    for (const text of texts) {
      for (const part of text.split(specialRe)) {
        for (const m of part.matchAll(splitter)) wordCounts.set(m[0], (wordCounts.get(m[0]) ?? 0) + 1);
      }
    }
    const symbols: string[] = [...BYTE_CHAR];
    const symbolId = new Map(symbols.map((s, i) => [s, i]));
    const words: number[][] = [], freqs: number[] = [];
    for (const [w, c] of wordCounts) {
      words.push(Array.from(utf8.encode(w), (b) => b));
      freqs.push(c);
    }
    // Pair statistics, updated incrementally as merges rewrite the words that contain them.
    const pairKey = (a: number, b: number) => a * 1_000_003 + b;
    const pairCount = new Map<number, number>();
    const pairWords = new Map<number, Set<number>>();
    const addPairs = (wi: number, sign: number) => {
      const w = words[wi];
      for (let i = 0; i + 1 < w.length; i++) {
        const k = pairKey(w[i], w[i + 1]);
        pairCount.set(k, (pairCount.get(k) ?? 0) + sign * freqs[wi]);
        if (sign > 0) {
          let set = pairWords.get(k);
          if (!set) pairWords.set(k, (set = new Set()));
          set.add(wi);
        }
      }
    };
    words.forEach((_, wi) => addPairs(wi, 1));
    const heap = new MaxHeap();
    for (const [k, c] of pairCount) heap.push(c, k);
    const merges: string[] = [];
    const minFreq = opts.minFrequency ?? 2;
    while (merges.length < numMerges) {
      const top = heap.pop();
      if (!top) break;
      const [count, k] = top;
      if (pairCount.get(k) !== count) continue; // stale entry
      if (count < minFreq) break;
      const a = Math.floor(k / 1_000_003), b = k % 1_000_003;
      const merged = symbols[a] + symbols[b];
      const id = symbols.length;
      symbols.push(merged);
      symbolId.set(merged, id);
      merges.push(`${symbols[a]} ${symbols[b]}`);
      const touched = new Set<number>();
      for (const wi of pairWords.get(k) ?? []) {
        const w = words[wi];
        let found = false;
        for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) found = true;
        if (!found) continue;
        addPairs(wi, -1);
        const next: number[] = [];
        for (let i = 0; i < w.length; i++) {
          if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
            next.push(id);
            i++;
          } else next.push(w[i]);
        }
        words[wi] = next;
        addPairs(wi, 1);
        touched.add(wi);
      }
      pairWords.delete(k);
      pairCount.delete(k);
      // Re-offer the counts that changed.
      for (const wi of touched) {
        const w = words[wi];
        for (let i = 0; i + 1 < w.length; i++) {
          const pk = pairKey(w[i], w[i + 1]);
          heap.push(pairCount.get(pk)!, pk);
        }
      }
    }
    return new Tokenizer(new Map(symbols.map((s, i) => [s, i])), merges, specials);
  }

  get vocabSize(): number {
    return this.tokens.length;
  }

  tokenId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  /** Token ids of text; special tokens written in the text map to their single ids. */
  encode(text: string): number[] {
    const out: number[] = [];
    const parts = this.specialPattern ? text.split(this.specialPattern) : [text];
    for (let p = 0; p < parts.length; p++) {
      const part = parts[p];
      if (!part) continue;
      // split() with a capturing group puts the separators at odd indices.
      if (p % 2 === 1 && this.specials.has(part)) {
        out.push(this.specials.get(part)!);
        continue;
      }
      for (const m of part.matchAll(this.splitter)) out.push(...this.encodeWord(m[0]));
    }
    return out;
  }

  private encodeWord(word: string): number[] {
    const hit = this.cache.get(word);
    if (hit) return hit;
    let parts = Array.from(utf8.encode(word), (b) => BYTE_CHAR[b]);
    while (parts.length > 1) {
      let best = -1, bestRank = Infinity;
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = this.ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)];
    }
    const ids = parts.map((t) => this.vocab.get(t)!);
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(word, ids);
    return ids;
  }

  /** Text of token ids. A cut UTF-8 sequence decodes to U+FFFD, never throws. */
  decode(ids: readonly number[], opts: { skipSpecial?: boolean } = {}): string {
    let out = '';
    let bytes: number[] = [];
    const flush = () => {
      if (bytes.length) out += utf8Decoder.decode(Uint8Array.from(bytes));
      bytes = [];
    };
    for (const id of ids) {
      const t = this.tokens[id];
      if (t === undefined) continue;
      if (this.specials.has(t)) {
        flush();
        if (!opts.skipSpecial) out += t;
        continue;
      }
      for (const ch of t) bytes.push(CHAR_BYTE.get(ch) ?? 63);
    }
    flush();
    return out;
  }

  /** Hugging Face tokenizer.json. */
  toJSON(): object {
    const vocab: Record<string, number> = {};
    this.tokens.forEach((t, id) => {
      if (!this.specials.has(t)) vocab[t] = id;
    });
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [...this.specials].map(([content, id]) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: null,
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: PRETOKENIZE_PATTERN }, behavior: 'Isolated', invert: false },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
        ],
      },
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      model: {
        type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: false, byte_fallback: false, ignore_merges: false,
        vocab, merges: [...this.ranks.keys()],
      },
    };
  }

  static fromJSON(json: unknown, source = 'tokenizer.json'): Tokenizer {
    const bad = (why: string) => new UserError(`${source}: not a byte-level BPE tokenizer.json: ${why}`);
    const j = json as { model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] }; added_tokens?: { id: number; content: string }[] };
    if (!j || typeof j !== 'object' || !j.model) throw bad('no model');
    if (j.model.type !== 'BPE') throw bad(`model.type is ${j.model.type}`);
    if (!j.model.vocab || typeof j.model.vocab !== 'object') throw bad('no model.vocab');
    if (!Array.isArray(j.model.merges)) throw bad('no model.merges');
    const vocab = new Map(Object.entries(j.model.vocab));
    for (const c of BYTE_CHAR) if (!vocab.has(c)) throw bad('a byte token is missing');
    const added = j.added_tokens ?? [];
    for (const a of added) vocab.set(a.content, a.id);
    const merges = j.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m));
    return new Tokenizer(vocab, merges, added.map((a) => a.content));
  }

  /** Writes dir/tokenizer.json (atomically) and dir/tokenizer_config.json. */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(join(dir, 'tokenizer.json'), [JSON.stringify(this.toJSON())]);
    const t = (id: number) => this.tokens[id] ?? null;
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({
      tokenizer_class: 'PreTrainedTokenizerFast', bos_token: t(this.bosId), eos_token: t(this.eosId), pad_token: t(this.padId),
      model_max_length: 1_000_000, clean_up_tokenization_spaces: false,
    }, null, 2) + '\n');
  }

  /** Loads a tokenizer.json file, or the one in a directory. */
  static load(pathOrDir: string): Tokenizer {
    const file = existsSync(pathOrDir) && statSync(pathOrDir).isDirectory() ? join(pathOrDir, 'tokenizer.json') : pathOrDir;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new UserError(`cannot read tokenizer ${file}: ${(e as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new UserError(`${file}: not valid JSON (${(e as Error).message})`);
    }
    return Tokenizer.fromJSON(json, file);
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Binary max-heap of (count, key), ties broken by the smaller key so training is deterministic. */
class MaxHeap {
  private items: [number, number][] = [];
  push(count: number, key: number): void {
    const a = this.items;
    a.push([count, key]);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }
  pop(): [number, number] | undefined {
    const a = this.items;
    if (!a.length) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && this.above(a[l], a[m])) m = l;
        if (r < a.length && this.above(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
  private above(x: [number, number], y: [number, number]): boolean {
    return x[0] > y[0] || (x[0] === y[0] && x[1] < y[1]);
  }
}
