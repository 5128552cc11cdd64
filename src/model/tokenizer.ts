// Byte-level BPE tokenizers (GPT-2 / Llama 3 / Qwen / DeepSeek style): text is split into
// pre-tokens, each pre-token's UTF-8 bytes become symbols, and merges join adjacent pairs, so every
// string round-trips, in any language. Any such Hugging Face `tokenizer.json` is read, encoded and
// decoded by Hugging Face's own JavaScript implementation (@huggingface/tokenizers); r1kit's trainer
// learns new ones and writes a tokenizer.json that the same library (and transformers) reads.
// Files in the exact layout that trainer writes encode through r1kit's own BPE (OwnBpe below),
// about 15x faster than the library on them and tested to give its ids.
import { Tokenizer as HfLibrary } from '@huggingface/tokenizers';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../files.ts';
import { ChatTemplate, tokenContent } from './chat-template.ts';

export const SPECIAL_TOKENS: readonly string[] = [
  '<|begin_of_text|>',
  '<|end_of_text|>',
  '<|pad|>',
  '<|system|>',
  '<|user|>',
  '<|assistant|>',
  '<|end_of_turn|>',
  '<think>',
  '</think>',
  '<answer>',
  '</answer>',
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
const utf8 = new TextEncoder();

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

type Json = Record<string, unknown>;

/** What r1kit uses of @huggingface/tokenizers' Tokenizer, typed here: the package's declarations do
 * not resolve under NodeNext (their relative imports have no file extensions), so it reads as any. */
type HfTokenizer = {
  encode(text: string, opts: { add_special_tokens: boolean }): { ids: number[] };
  decode(ids: number[], opts: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  /** The BPE model: vocabulary with the added tokens, merges in rank order. */
  model: { tokens_to_ids: Map<string, number>; merges: [string, string][] };
};
const isObj = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);

/** What a tokenizer folder holds besides tokenizer.json, each with the file named in errors. */
export type TokenizerCompanions = {
  /** tokenizer_config.json: special tokens, chat template. */
  config?: { file: string; json: unknown };
  /** generation_config.json: the ids that end a generation. */
  generation?: { file: string; json: unknown };
  /** chat_template.jinja, which newer transformers versions write instead of config.chat_template. */
  chatTemplate?: { file: string; text: string };
};

export class Tokenizer {
  /** -1 when the tokenizer has none (Qwen). */
  readonly bosId: number;
  /** The first of eosIds: what training appends after a completion. */
  readonly eosId: number;
  /** Every id that ends a generation: generation_config.json's eos_token_id (an id or a list; an
   * instruct model's end of turn is among them), else tokenizer_config.json's eos_token. */
  readonly eosIds: readonly number[];
  readonly padId: number;
  /** Ids that go before a text that starts a sequence (a prompt, a training row), unless it starts
   * with them already (a chat template that writes the BOS): the BOS of a tokenizer that adds one
   * (transformers' `add_bos_token`, or its post-processor's template), and for r1kit's own
   * tokenizers, which have no post-processor, the end-of-text token that separates pretraining
   * documents, so a prompt looks like a document start. */
  readonly documentStart: readonly number[];
  readonly vocabSize: number;
  /** The model's own chat template, when its tokenizer_config.json (or chat_template.jinja) has one. */
  readonly chatTemplate: ChatTemplate | null;
  private readonly lib: HfTokenizer;
  /** r1kit's own encoder, for files in the trainer's layout; null for any other tokenizer.json. */
  private readonly own: OwnBpe | null;

  private constructor(
    private readonly json: Json,
    private readonly config: Json,
    private readonly templateJinja: string | null,
    lib: HfTokenizer,
    ids: { bos: number; eos: number[]; pad: number; documentStart: number[]; vocabSize: number },
    chatTemplate: ChatTemplate | null,
  ) {
    this.lib = lib;
    this.own = OwnBpe.fromJson(json);
    this.bosId = ids.bos;
    this.eosIds = ids.eos;
    this.eosId = ids.eos[0] ?? -1;
    this.padId = ids.pad;
    this.documentStart = ids.documentStart;
    this.vocabSize = ids.vocabSize;
    this.chatTemplate = chatTemplate;
  }

  /** Learns merges from texts until the vocabulary (bytes + merges + specials) reaches vocabSize,
   * or no pair occurs minFrequency (default 2) times. Deterministic: ties go to the smaller id pair. */
  static train(
    texts: Iterable<string>,
    opts: { vocabSize: number; specialTokens?: readonly string[]; minFrequency?: number; pattern?: string },
  ): Tokenizer {
    const pattern = opts.pattern ?? PRETOKENIZE_PATTERN;
    const specials = opts.specialTokens ?? SPECIAL_TOKENS;
    const target = opts.vocabSize - specials.length;
    if (!(target >= 256)) throw new UserError(`vocab_size ${opts.vocabSize} is below the 256 bytes + ${specials.length} special tokens`);
    const minFreq = Math.max(1, opts.minFrequency ?? 2);
    const words: (readonly number[])[] = [],
      freqs: number[] = [];
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
      const a = Math.floor(k / base),
        b = k % base;
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
        const w = words[wi],
          f = freqs[wi];
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
    return Tokenizer.fromJSON(trainedJson(symbolId, merges, specials, pattern), 'the trained tokenizer');
  }

  tokenId(token: string): number | undefined {
    return this.lib.token_to_id(token);
  }

  /** Token ids of text, with no BOS/EOS added; special tokens written in the text map to their ids. */
  encode(text: string): number[] {
    return this.own ? this.own.encode(text) : this.libraryEncode(text);
  }

  /** encode() through @huggingface/tokenizers, whatever the file (the reference of the fast path). */
  libraryEncode(text: string): number[] {
    return this.lib.encode(text, { add_special_tokens: false }).ids;
  }

  /** True when encode() runs r1kit's own BPE (a tokenizer.json in the layout r1kit's trainer writes). */
  get fastEncode(): boolean {
    return this.own !== null;
  }

  /** Text of token ids; ids with no token (a model's padded embedding rows) are left out. A cut
   * UTF-8 sequence decodes to U+FFFD, never throws. */
  decode(ids: readonly number[], opts: { skipSpecial?: boolean } = {}): string {
    const known = ids.filter((id) => this.lib.id_to_token(id) !== undefined);
    if (!known.length) return '';
    // No clean-up of spaces before punctuation (transformers' default for some models): the text
    // must be exactly what the model wrote, for rewards that read code and maths, and for round trips.
    return this.lib.decode(known, { skip_special_tokens: opts.skipSpecial ?? false, clean_up_tokenization_spaces: false });
  }

  /** The Hugging Face tokenizer.json content (a copy). */
  toJSON(): object {
    return structuredClone(this.json);
  }

  /** Tokenizer from tokenizer.json content, with the other files of its folder when given; source
   * names the file in errors. Without a tokenizer_config.json, special tokens go by r1kit's names. */
  static fromJSON(json: unknown, source = 'tokenizer.json', more: TokenizerCompanions = {}): Tokenizer {
    checkTokenizerJson(json, source);
    const tokenizerJson = { ...json, added_tokens: json.added_tokens ?? [] };
    let lib: HfTokenizer;
    try {
      lib = new HfLibrary(tokenizerJson, {}) as HfTokenizer;
    } catch (e) {
      throw new UserError(`${source}: @huggingface/tokenizers cannot read it: ${(e as Error).message}`);
    }
    checkVocabulary(lib, json, source);
    const has = (t: string) => lib.token_to_id(t) !== undefined;
    let config: Json, configFile: string;
    if (more.config) {
      if (!isObj(more.config.json)) throw new UserError(`${more.config.file}: not a JSON object`);
      config = more.config.json;
      configFile = more.config.file;
    } else {
      config = r1kitConfig(has);
      configFile = `the default tokenizer_config of ${source}`;
    }
    /** Id of a special-token field of tokenizer_config.json; -1 when it is null or absent. */
    const fieldId = (field: string): number => {
      const value = config[field];
      if (value === null || value === undefined) return -1;
      const content = tokenContent(value);
      if (content === undefined)
        throw new UserError(`${configFile}: ${field} must be a token string or an AddedToken object, got ${JSON.stringify(value)}`);
      const id = lib.token_to_id(content);
      if (id === undefined) throw new UserError(`${configFile}: ${field} ${JSON.stringify(content)} is not a token of ${source}`);
      return id;
    };
    const bos = fieldId('bos_token');
    const eos = (more.generation && generationEos(more.generation, lib, source)) || [fieldId('eos_token')].filter((id) => id >= 0);
    const pad = fieldId('pad_token');
    let vocabSize = 0;
    for (const id of lib.model.tokens_to_ids.values()) vocabSize = Math.max(vocabSize, id + 1);
    let template: ChatTemplate | null = null;
    if (more.chatTemplate) template = new ChatTemplate(more.chatTemplate.file, more.chatTemplate.text, config);
    else if (config.chat_template !== undefined && config.chat_template !== null)
      template = new ChatTemplate(configFile, chatTemplateText(config.chat_template, configFile), config);
    const ids = {
      bos,
      eos,
      pad: pad >= 0 ? pad : (eos[0] ?? -1),
      documentStart: documentStart(json, config, lib, bos, eos[0] ?? -1),
      vocabSize,
    };
    return new Tokenizer(json, config, more.chatTemplate ? more.chatTemplate.text : null, lib, ids, template);
  }

  /** Writes dir/tokenizer.json (atomically) and dir/tokenizer_config.json as they were read (or
   * made by the trainer), and chat_template.jinja when the template came from one. */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(join(dir, 'tokenizer.json'), [JSON.stringify(this.json)]);
    writeFileAtomic(join(dir, 'tokenizer_config.json'), [JSON.stringify(this.config, null, 2) + '\n']);
    if (this.templateJinja !== null) writeFileAtomic(join(dir, 'chat_template.jinja'), [this.templateJinja]);
  }

  /** Loads a tokenizer.json file, or the one in a directory, with the tokenizer_config.json,
   * generation_config.json and chat_template.jinja beside it when there are. */
  static load(pathOrDir: string): Tokenizer {
    const isDir = existsSync(pathOrDir) && statSync(pathOrDir).isDirectory();
    const file = isDir ? join(pathOrDir, 'tokenizer.json') : pathOrDir;
    const dir = isDir ? pathOrDir : dirname(pathOrDir);
    const json = readJson(file, `cannot read tokenizer ${file}`);
    const companion = (name: string) => {
      const path = join(dir, name);
      return existsSync(path) ? { file: path, json: readJson(path, `cannot read ${path}`) } : undefined;
    };
    const templatePath = join(dir, 'chat_template.jinja');
    return Tokenizer.fromJSON(json, file, {
      config: companion('tokenizer_config.json'),
      generation: companion('generation_config.json'),
      chatTemplate: existsSync(templatePath) ? { file: templatePath, text: readFileSync(templatePath, 'utf8') } : undefined,
    });
  }
}

function readJson(file: string, cannot: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`${cannot}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

type TokenizerJson = Json & {
  model: Json & { vocab: Record<string, number>; merges: unknown[] };
  added_tokens?: { id: number; content: string }[];
};

/** The shape of a byte-level BPE tokenizer.json, checked before the library reads it. */
function checkTokenizerJson(json: unknown, source: string): asserts json is TokenizerJson {
  const bad = (why: string) => new UserError(`${source}: not a byte-level BPE tokenizer.json: ${why}`);
  if (!isObj(json) || !isObj(json.model)) throw bad('no "model" object');
  const model = json.model;
  if (model.type !== 'BPE') {
    throw new UserError(
      `${source}: tokenizer model ${JSON.stringify(model.type)} is not supported: r1kit reads byte-level BPE tokenizers ` +
        '(model.type "BPE" with a ByteLevel pre-tokenizer, as Llama 3, Qwen2, Qwen3 and DeepSeek-V3 use), not Unigram or WordPiece',
    );
  }
  if (!isObj(model.vocab)) throw bad('no model.vocab object');
  if (!Array.isArray(model.merges)) throw bad('no model.merges array');
  const pre = json.pre_tokenizer;
  const steps = isObj(pre) && pre.type === 'Sequence' && Array.isArray(pre.pretokenizers) ? pre.pretokenizers : [pre];
  if (!steps.some((p) => isObj(p) && p.type === 'ByteLevel')) throw bad('its pre_tokenizer has no ByteLevel step');
  const added = json.added_tokens ?? [];
  if (!Array.isArray(added)) throw bad('added_tokens is not an array');
  added.forEach((a: unknown, i) => {
    if (!isObj(a) || typeof a.content !== 'string' || !Number.isInteger(a.id) || (a.id as number) < 0)
      throw bad(`added_tokens[${i}] needs a string "content" and an integer "id"`);
  });
}

/** What the library would take silently from a broken file, and encode to unknown ids: every token
 * id an integer, every byte a token, every merge joining tokens of the vocabulary into one. Checked
 * on the library's own maps rather than on a second copy of a vocabulary of 150,000 tokens. */
function checkVocabulary(lib: HfTokenizer, json: TokenizerJson, source: string): void {
  const bad = (why: string) => new UserError(`${source}: not a byte-level BPE tokenizer.json: ${why}`);
  const model = lib.model;
  const ids = model.tokens_to_ids;
  for (const [t, id] of ids) if (!Number.isInteger(id) || id < 0) throw bad(`model.vocab[${JSON.stringify(t)}] is not a token id`);
  for (const c of BYTE_CHAR) if (!ids.has(c)) throw bad(`model.vocab lacks the byte token ${JSON.stringify(c)}`);
  model.merges.forEach(([l, r], i) => {
    if (!ids.has(l) || !ids.has(r) || !ids.has(l + r))
      throw bad(`model.merges[${i}] ${JSON.stringify(json.model.merges[i])} is not a pair of tokens merging into a token of model.vocab`);
  });
}

/** generation_config.json's eos_token_id: one id or a list, each a token of the tokenizer;
 * undefined when the file has none. */
function generationEos(generation: { file: string; json: unknown }, lib: HfTokenizer, source: string): number[] | undefined {
  const { file, json } = generation;
  if (!isObj(json)) throw new UserError(`${file}: not a JSON object`);
  const value = json.eos_token_id;
  if (value === undefined || value === null) return undefined;
  const ids = Array.isArray(value) ? value : [value];
  for (const id of ids) {
    if (!Number.isInteger(id) || lib.id_to_token(id as number) === undefined) {
      throw new UserError(`${file}: eos_token_id ${JSON.stringify(value)}: ${JSON.stringify(id)} is not a token id of ${source}`);
    }
  }
  return ids as number[];
}

/** tokenizer_config.json's chat_template: a string, or transformers' list of named templates, of
 * which `apply_chat_template` takes "default" when no template is named. */
function chatTemplateText(value: unknown, file: string): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const found = value.find((t) => isObj(t) && t.name === 'default' && typeof t.template === 'string') as { template: string } | undefined;
    if (found) return found.template;
    throw new UserError(`${file}: chat_template is a list of named templates without one named "default"`);
  }
  throw new UserError(`${file}: chat_template must be a string or a list of {name, template}, got ${JSON.stringify(value).slice(0, 80)}`);
}

/** See Tokenizer.documentStart. */
function documentStart(json: TokenizerJson, config: Json, lib: HfTokenizer, bos: number, eos: number): number[] {
  if (typeof config.add_bos_token === 'boolean') return config.add_bos_token && bos >= 0 ? [bos] : [];
  if (json.post_processor === null || json.post_processor === undefined) return eos >= 0 ? [eos] : [];
  // What the post-processor puts in front of a text when special tokens are asked for.
  const bare: number[] = lib.encode('a', { add_special_tokens: false }).ids;
  const full: number[] = lib.encode('a', { add_special_tokens: true }).ids;
  const at = full.findIndex((_, i) => bare.every((id, k) => full[i + k] === id));
  return full.slice(0, Math.max(0, at));
}

/** tokenizer_config.json of a tokenizer r1kit trained, and what a tokenizer.json read alone goes by:
 * the special tokens by r1kit's names, where the vocabulary has them. */
function r1kitConfig(has: (token: string) => boolean): Json {
  const named = (t: string) => (has(t) ? t : null);
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: named('<|begin_of_text|>'),
    eos_token: named('<|end_of_text|>'),
    pad_token: named('<|pad|>') ?? named('<|end_of_text|>'),
    model_max_length: 1_000_000,
    clean_up_tokenization_spaces: false,
  };
}

/** tokenizer.json of a trained tokenizer. vocab: token -> id, holding the 256 byte characters and
 * every merge result; merges in rank order; specials get the next ids unless in vocab. */
function trainedJson(
  vocab: ReadonlyMap<string, number>,
  merges: readonly (readonly [string, string])[],
  specials: readonly string[],
  pattern: string,
): Json {
  let next = 0;
  for (const id of vocab.values()) next = Math.max(next, id + 1);
  const added = specials.map((content) => ({
    id: vocab.get(content) ?? next++,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const plain: Record<string, number> = {};
  const specialSet = new Set(specials);
  for (const [t, id] of vocab) if (!specialSet.has(t)) plain[t] = id;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: plain,
      merges: merges.map(([l, r]) => `${l} ${r}`),
    },
  };
}

/** Byte-level BPE encoding of tokenizer.json files in exactly the layout trainedJson writes (the
 * only layout it accepts, so it never guesses at another file's options): special tokens cut out
 * first (leftmost, longest), the Split regex's pieces and the gaps between them (Isolated), each
 * piece's UTF-8 bytes merged lowest rank first, pieces cached. */
class OwnBpe {
  private readonly splitter: RegExp;
  private readonly specialPattern: RegExp | null;
  private readonly specials = new Map<string, number>();
  private readonly byteIds: Int32Array;
  /** left id * pairBase + right id -> rank * pairBase + merged id. */
  private readonly mergeOf = new Map<number, number>();
  private readonly pairBase: number;
  private readonly cache = new Map<string, number[]>();

  private constructor(pattern: string, vocab: Record<string, number>, merges: string[], added: { id: number; content: string }[]) {
    this.splitter = new RegExp(pattern, 'gu');
    let next = 0;
    for (const id of Object.values(vocab)) next = Math.max(next, id + 1);
    for (const a of added) next = Math.max(next, a.id + 1);
    this.pairBase = next;
    this.byteIds = Int32Array.from(BYTE_CHAR, (c) => vocab[c]);
    merges.forEach((m, rank) => {
      const [l, r] = m.split(' ');
      const key = vocab[l] * next + vocab[r];
      if (!this.mergeOf.has(key)) this.mergeOf.set(key, rank * next + vocab[l + r]);
    });
    for (const a of added) this.specials.set(a.content, a.id);
    this.specialPattern = added.length
      ? new RegExp(
          `(${[...this.specials.keys()]
            .sort((a, b) => b.length - a.length)
            .map(escapeRegExp)
            .join('|')})`,
          'g',
        )
      : null;
  }

  /** The encoder for json when it is in the trainer's layout exactly, else null. */
  static fromJson(json: Json): OwnBpe | null {
    const same = (x: unknown, want: unknown) => JSON.stringify(x) === JSON.stringify(want);
    const model = json.model as Json,
      pre = json.pre_tokenizer as Json;
    const steps = isObj(pre) && Array.isArray(pre.pretokenizers) ? (pre.pretokenizers as Json[]) : [];
    const split = steps[0],
      pattern = isObj(split) && isObj(split.pattern) ? split.pattern.Regex : undefined;
    const added = Array.isArray(json.added_tokens) ? (json.added_tokens as Json[]) : null;
    const trainedLike = (s: string) => trainedJson(new Map(), [], [], s);
    if (typeof pattern !== 'string' || !added || !isObj(model) || !isObj(model.vocab) || !Array.isArray(model.merges)) return null;
    const want = trainedLike(pattern);
    for (const field of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder'] as const)
      if (!same(json[field], want[field])) return null;
    const { vocab: _v, merges: _m, ...options } = model;
    const { vocab: _wv, merges: _wm, ...wantOptions } = want.model as Json;
    if (!same(options, wantOptions) || !model.merges.every((m) => typeof m === 'string' && m.split(' ').length === 2)) return null;
    if (
      !added.every(
        (a) =>
          a.special === true &&
          a.normalized === false &&
          a.lstrip === false &&
          a.rstrip === false &&
          a.single_word === false &&
          typeof a.content === 'string' &&
          a.content !== '',
      )
    )
      return null;
    return new OwnBpe(pattern, model.vocab as Record<string, number>, model.merges as string[], added as { id: number; content: string }[]);
  }

  encode(text: string): number[] {
    const out: number[] = [];
    const parts = this.specialPattern ? text.split(this.specialPattern) : [text];
    for (let p = 0; p < parts.length; p++) {
      const part = parts[p];
      if (!part) continue;
      if (p % 2 === 1) {
        // split() with a capturing group puts the separators at odd indices
        out.push(this.specials.get(part)!);
        continue;
      }
      const re = this.splitter;
      re.lastIndex = 0;
      let end = 0;
      for (let m = re.exec(part); m !== null; m = re.exec(part)) {
        if (m.index > end) this.pushPiece(part.slice(end, m.index), out); // a gap the pattern missed
        this.pushPiece(m[0], out);
        end = re.lastIndex;
        if (m[0] === '') re.lastIndex++; // an empty match would repeat forever
      }
      if (end < part.length) this.pushPiece(part.slice(end), out);
    }
    return out;
  }

  private pushPiece(piece: string, out: number[]): void {
    let ids = this.cache.get(piece);
    if (!ids) {
      ids = this.merge(piece);
      if (this.cache.size >= 100_000) this.cache.clear(); // bounds memory on endless unique pieces
      this.cache.set(piece, ids);
    }
    for (let i = 0; i < ids.length; i++) out.push(ids[i]);
  }

  /** BPE of one piece: repeatedly merge every occurrence, left to right, of the lowest-rank pair. */
  private merge(piece: string): number[] {
    const base = this.pairBase;
    const ids = Array.from(utf8.encode(piece), (b) => this.byteIds[b]);
    for (;;) {
      let best = Infinity,
        bestKey = -1;
      for (let i = 0; i + 1 < ids.length; i++) {
        const key = ids[i] * base + ids[i + 1];
        const m = this.mergeOf.get(key);
        if (m !== undefined && m < best) [best, bestKey] = [m, key];
      }
      if (bestKey < 0) return ids;
      const into = best % base;
      let j = 0;
      for (let i = 0; i < ids.length; i++) {
        if (i + 1 < ids.length && ids[i] * base + ids[i + 1] === bestKey) {
          ids[j++] = into;
          i++;
        } else ids[j++] = ids[i];
      }
      ids.length = j;
    }
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
        const l = 2 * i + 1,
          r = l + 1;
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
