// Byte-level BPE (GPT-2 / Llama 3 style): text is split into pre-tokens by a regex, each pre-token's
// UTF-8 bytes become symbols, and learned merges join frequent adjacent pairs. Every string
// round-trips, in any language. Saved as Hugging Face `tokenizer.json`, which other tools read.
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
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

/** The same, but every Chinese character is a pre-token of its own (as BERT splits them), so merges
 * join bytes into characters and never characters into phrases. Without it, BPE on Chinese text with
 * no spaces learns tokens such as "。然后李明送出了": each name-and-verb pair its own token, seen a
 * few times each, so a small model cannot learn what the verb means. */
export const CJK_PRETOKENIZE_PATTERN = '\\p{Script=Han}|' + PRETOKENIZE_PATTERN.replace('\\p{L}+', '(?:(?!\\p{Script=Han})\\p{L})+');

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

/** Counts the regex pre-tokens of texts, with special tokens cut out first. */
function countWords(texts: Iterable<string>, specials: readonly string[], pattern: string): Map<string, number> {
  const splitter = new RegExp(pattern, 'gu');
  const specialRe = new RegExp(specials.map(escapeRegExp).join('|') || '(?!)', 'g');
  const counts = new Map<string, number>();
  for (const text of texts) {
    for (const part of text.split(specialRe)) {
      for (const m of part.matchAll(splitter)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
    }
  }
  return counts;
}

export class Tokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  private readonly vocab: Map<string, number>;
  private readonly tokens: string[];
  private readonly merges: (readonly [string, string])[];
  private readonly pairBase: number; // above every id
  /** left id * pairBase + right id -> [rank, merged id]. */
  private readonly mergeOf = new Map<number, readonly [number, number]>();
  private readonly byteIds: number[];
  private readonly specials: Map<string, number>;
  private readonly specialPattern: RegExp | null;
  private readonly splitter: RegExp;
  /** The pre-tokenizer regex (saved in tokenizer.json). */
  readonly pattern: string;
  private readonly cache = new Map<string, number[]>();

  /** vocab: token string -> id, holding the 256 byte characters and every merge result;
   * merges in rank order as [left, right] (or "left right"); specials get new ids unless in vocab. */
  constructor(vocab: Map<string, number>, merges: readonly (string | readonly [string, string])[], specials: readonly string[], pattern = PRETOKENIZE_PATTERN) {
    this.pattern = pattern;
    this.splitter = new RegExp(pattern, 'gu');
    this.vocab = new Map(vocab);
    this.specials = new Map();
    let next = 0;
    for (const id of this.vocab.values()) next = Math.max(next, id + 1);
    for (const s of specials) {
      const id = this.vocab.get(s) ?? next++;
      this.vocab.set(s, id);
      this.specials.set(s, id);
    }
    this.tokens = [];
    for (const [t, id] of this.vocab) this.tokens[id] = t;
    this.byteIds = BYTE_CHAR.map((c) => this.vocab.get(c)!);
    this.pairBase = this.tokens.length;
    this.merges = merges.map((m) => (typeof m === 'string' ? splitMerge(m) : [m[0], m[1]] as const));
    this.merges.forEach(([l, r], rank) => {
      const key = this.vocab.get(l)! * this.pairBase + this.vocab.get(r)!;
      if (!this.mergeOf.has(key)) this.mergeOf.set(key, [rank, this.vocab.get(l + r)!]);
    });
    this.specialPattern = this.specials.size
      ? new RegExp(`(${[...this.specials.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp).join('|')})`, 'g')
      : null;
    const id = (t: string) => this.specials.get(t) ?? -1;
    this.bosId = id('<|begin_of_text|>');
    this.eosId = id('<|end_of_text|>');
    this.padId = id('<|pad|>') >= 0 ? id('<|pad|>') : this.eosId;
  }

  /** Learns merges from texts until the vocabulary (bytes + merges + specials) reaches vocabSize,
   * or no pair occurs minFrequency (default 2) times. Deterministic: ties go to the smaller id pair. */
  static train(texts: Iterable<string>, opts: { vocabSize: number; specialTokens?: readonly string[]; minFrequency?: number; pattern?: string }): Tokenizer {
    const pattern = opts.pattern ?? PRETOKENIZE_PATTERN;
    const specials = opts.specialTokens ?? SPECIAL_TOKENS;
    const target = opts.vocabSize - specials.length;
    if (!(target >= 256)) throw new UserError(`vocab_size ${opts.vocabSize} is below the 256 bytes + ${specials.length} special tokens`);
    const minFreq = Math.max(1, opts.minFrequency ?? 2);
    const words: (readonly number[])[] = [], freqs: number[] = [];
    for (const [w, c] of countWords(texts, specials, pattern)) {
      words.push(Array.from(utf8.encode(w)));
      freqs.push(c);
    }
    // Pair counts over all words (weighted by word count), and which words hold each pair.
    // A merge rewrites only the words holding its pair, and changes only the pairs next to it.
    const base = target; // ids stay below it, so pair keys stay small integers
    const pairCount = new Map<number, number>();
    const pairWords = new Map<number, Set<number>>();
    const addWord = (k: number, wi: number) => {
      let set = pairWords.get(k);
      if (!set) pairWords.set(k, (set = new Set()));
      set.add(wi);
    };
    words.forEach((w, wi) => {
      for (let i = 0; i + 1 < w.length; i++) {
        const k = w[i] * base + w[i + 1];
        pairCount.set(k, (pairCount.get(k) ?? 0) + freqs[wi]);
        addWord(k, wi);
      }
    });
    const heap = new MaxHeap(); // may hold stale counts; an entry counts only if it matches pairCount
    for (const [k, c] of pairCount) heap.push(c, k);
    const symbols: string[] = [...BYTE_CHAR];
    const symbolId = new Map(symbols.map((s, i) => [s, i]));
    const merges: [string, string][] = [];
    while (symbols.length < target) {
      const top = heap.pop();
      if (!top) break;
      const [count, k] = top;
      if (pairCount.get(k) !== count) continue;
      if (count < minFreq) break;
      const a = Math.floor(k / base), b = k % base;
      const merged = symbols[a] + symbols[b];
      // Different merge paths can spell the same token; it keeps one id (as HF's trainer does).
      let id = symbolId.get(merged);
      if (id === undefined) {
        id = symbols.length;
        symbols.push(merged);
        symbolId.set(merged, id);
      }
      merges.push([symbols[a], symbols[b]]);
      const delta = new Map<number, number>();
      const bump = (pk: number, d: number) => delta.set(pk, (delta.get(pk) ?? 0) + d);
      for (const wi of pairWords.get(k)!) {
        const w = words[wi], f = freqs[wi];
        // Merge left to right; old pairs touching a merged position go, new pairs touching one come.
        const nw: number[] = [];
        let lastFresh = -2; // index in nw of the last merged token
        for (let i = 0; i < w.length; i++) {
          if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
            if (i > 0 && lastFresh !== nw.length - 1) bump(w[i - 1] * base + a, -f); // left neighbour, unless just merged
            bump(k, -f);
            if (i + 2 < w.length) bump(b * base + w[i + 2], -f);
            if (nw.length) {
              const pk = nw[nw.length - 1] * base + id;
              bump(pk, f);
              addWord(pk, wi);
            }
            nw.push(id);
            lastFresh = nw.length - 1;
            i++;
          } else {
            if (lastFresh === nw.length - 1) {
              const pk = id * base + w[i];
              bump(pk, f);
              addWord(pk, wi);
            }
            nw.push(w[i]);
          }
        }
        if (lastFresh < 0) continue; // an earlier merge already removed the pair from this word
        words[wi] = nw;
      }
      for (const [pk, d] of delta) {
        if (d === 0) continue;
        const c = (pairCount.get(pk) ?? 0) + d;
        if (c > 0) {
          pairCount.set(pk, c);
          heap.push(c, pk);
        } else {
          pairCount.delete(pk);
          pairWords.delete(pk);
        }
      }
    }
    return new Tokenizer(symbolId, merges, specials, pattern);
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

  /** BPE of one pre-token: repeatedly merge the lowest-rank pair present (all its occurrences). */
  private encodeWord(word: string): number[] {
    const hit = this.cache.get(word);
    if (hit) return hit;
    const ids = Array.from(utf8.encode(word), (b) => this.byteIds[b]);
    for (;;) {
      let bestRank = Infinity, bestKey = -1, into = -1;
      for (let i = 0; i + 1 < ids.length; i++) {
        const key = ids[i] * this.pairBase + ids[i + 1];
        const m = this.mergeOf.get(key);
        if (m && m[0] < bestRank) [bestRank, bestKey, into] = [m[0], key, m[1]];
      }
      if (bestKey < 0) break;
      let j = 0;
      for (let i = 0; i < ids.length; i++) {
        if (i + 1 < ids.length && ids[i] * this.pairBase + ids[i + 1] === bestKey) {
          ids[j++] = into;
          i++;
        } else ids[j++] = ids[i];
      }
      ids.length = j;
    }
    if (this.cache.size >= 100_000) this.cache.clear(); // bounds memory on endless unique words
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
          { type: 'Split', pattern: { Regex: this.pattern }, behavior: 'Isolated', invert: false },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
        ],
      },
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      model: {
        type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: false, byte_fallback: false, ignore_merges: false,
        vocab, merges: this.merges.map(([l, r]) => `${l} ${r}`),
      },
    };
  }

  /** Tokenizer from tokenizer.json content; source names the file in errors. */
  static fromJSON(json: unknown, source = 'tokenizer.json'): Tokenizer {
    const bad = (why: string) => new UserError(`${source}: not a byte-level BPE tokenizer.json: ${why}`);
    const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
    if (!isObj(json) || !isObj(json.model)) throw bad('no "model" object');
    const model = json.model;
    if (model.type !== 'BPE') throw bad(`model.type is ${JSON.stringify(model.type)}, expected "BPE"`);
    if (!isObj(model.vocab)) throw bad('no model.vocab object');
    if (!Array.isArray(model.merges)) throw bad('no model.merges array');
    const vocab = new Map<string, number>();
    for (const [t, id] of Object.entries(model.vocab)) {
      if (!Number.isInteger(id) || (id as number) < 0) throw bad(`model.vocab[${JSON.stringify(t)}] is not a token id`);
      vocab.set(t, id as number);
    }
    for (const c of BYTE_CHAR) if (!vocab.has(c)) throw bad(`model.vocab lacks the byte token ${JSON.stringify(c)}`);
    const merges = model.merges.map((m: unknown, i): [string, string] => {
      const pair = typeof m === 'string' ? splitMerge(m) : m;
      const ok = Array.isArray(pair) && pair.length === 2 && pair.every((t) => typeof t === 'string' && vocab.has(t)) && vocab.has(pair[0] + pair[1]);
      if (!ok) throw bad(`model.merges[${i}] ${JSON.stringify(m)} is not a pair of tokens merging into a token of model.vocab`);
      return pair as [string, string];
    });
    const added = json.added_tokens ?? [];
    if (!Array.isArray(added)) throw bad('added_tokens is not an array');
    const specials: string[] = [];
    added.forEach((a: unknown, i) => {
      if (!isObj(a) || typeof a.content !== 'string' || !Number.isInteger(a.id)) throw bad(`added_tokens[${i}] needs a string "content" and an integer "id"`);
      vocab.set(a.content, a.id as number);
      specials.push(a.content);
    });
    // The pre-tokenizer regex, when the file names one (older files and other tools' may not).
    const pre = isObj(json.pre_tokenizer) && Array.isArray(json.pre_tokenizer.pretokenizers) ? json.pre_tokenizer.pretokenizers : [];
    const split = pre.find((p): p is Record<string, unknown> => isObj(p) && p.type === 'Split' && isObj(p.pattern) && typeof p.pattern.Regex === 'string');
    const pattern = split ? String((split.pattern as Record<string, unknown>).Regex) : PRETOKENIZE_PATTERN;
    try {
      new RegExp(pattern, 'gu');
    } catch (e) {
      throw bad(`pre_tokenizer pattern is not a valid regex here: ${(e as Error).message}`);
    }
    return new Tokenizer(vocab, merges, specials, pattern);
  }

  /** Writes dir/tokenizer.json (atomically) and dir/tokenizer_config.json. */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(join(dir, 'tokenizer.json'), [JSON.stringify(this.toJSON())]);
    const t = (id: number) => this.tokens[id] ?? null;
    writeFileAtomic(join(dir, 'tokenizer_config.json'), [JSON.stringify({
      tokenizer_class: 'PreTrainedTokenizerFast', bos_token: t(this.bosId), eos_token: t(this.eosId), pad_token: t(this.padId),
      model_max_length: 1_000_000, clean_up_tokenization_spaces: false,
    }, null, 2) + '\n']);
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

/** "left right" -> [left, right]; byte-level tokens never hold a space. */
function splitMerge(m: string): [string, string] {
  const i = m.indexOf(' ');
  return [m.slice(0, i), m.slice(i + 1)];
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
