// Language-consistency reward (DeepSeek-R1): the share of the chain of thought written in the target
// language. CJK text counts per character, alphabetic scripts per word; code, maths, numbers, URLs
// and one-letter variables count for neither side.
import { chainOfThought, withPromptTag } from './tags.ts';
import type { BuiltinReward, RewardBatch, RewardValue } from './types.ts';

export type Script = 'latin' | 'han' | 'kana' | 'hangul' | 'cyrillic' | 'arabic' | 'greek' | 'devanagari' | 'thai' | 'hebrew';

/** Scripts a language is written in (Japanese mixes kanji and kana). */
const LANGUAGES: Record<string, Script[]> = {
  en: ['latin'],
  fr: ['latin'],
  de: ['latin'],
  es: ['latin'],
  it: ['latin'],
  pt: ['latin'],
  nl: ['latin'],
  vi: ['latin'],
  id: ['latin'],
  tr: ['latin'],
  pl: ['latin'],
  zh: ['han'],
  ja: ['han', 'kana'],
  ko: ['hangul'],
  ru: ['cyrillic'],
  uk: ['cyrillic'],
  ar: ['arabic'],
  el: ['greek'],
  hi: ['devanagari'],
  th: ['thai'],
  he: ['hebrew'],
};
const NAMES: Record<string, string> = {
  english: 'en',
  chinese: 'zh',
  mandarin: 'zh',
  japanese: 'ja',
  korean: 'ko',
  russian: 'ru',
  french: 'fr',
  german: 'de',
  spanish: 'es',
  中文: 'zh',
  英文: 'en',
};

/** A language code ('en', 'zh-CN', 'Chinese') as a key of LANGUAGES, or null if unknown. */
export function languageCode(lang: string): string | null {
  const l = lang.trim().toLowerCase();
  const code = NAMES[l] ?? l.split(/[-_]/)[0];
  return LANGUAGES[code] ? code : null;
}

const CJK_CHAR = /[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[\u3040-\u30ff]|[\uac00-\ud7af\u1100-\u11ff]/g;
// Words of two or more letters in an alphabetic script (one-letter tokens are variables: x, n, a).
const WORD =
  /[A-Za-z\u00c0-\u024f]{2,}|[\u0400-\u04ff]{2,}|[\u0600-\u06ff]{2,}|[\u0370-\u03ff]{2,}|[\u0900-\u097f]{2,}|[\u0e00-\u0e7f]{2,}|[\u0590-\u05ff]{2,}/g;
const MATH_WORDS = new Set([
  'sin',
  'cos',
  'tan',
  'log',
  'ln',
  'exp',
  'max',
  'min',
  'mod',
  'gcd',
  'lcm',
  'lim',
  'sqrt',
  'frac',
  'cdot',
  'pi',
]);

function scriptOf(ch: string): Script {
  const c = ch.codePointAt(0)!;
  if (c >= 0x3040 && c <= 0x30ff) return 'kana';
  if ((c >= 0xac00 && c <= 0xd7af) || (c >= 0x1100 && c <= 0x11ff)) return 'hangul';
  if (c >= 0x3400 && c <= 0xfaff) return 'han';
  if (c >= 0x0400 && c <= 0x04ff) return 'cyrillic';
  if (c >= 0x0600 && c <= 0x06ff) return 'arabic';
  if (c >= 0x0370 && c <= 0x03ff) return 'greek';
  if (c >= 0x0900 && c <= 0x097f) return 'devanagari';
  if (c >= 0x0e00 && c <= 0x0e7f) return 'thai';
  if (c >= 0x0590 && c <= 0x05ff) return 'hebrew';
  return 'latin';
}

/** Drops every `open ... close` span (an unclosed one to the end): indexOf-based, so linear. */
function dropSpans(text: string, open: string, close: string): string {
  let out = '',
    pos = 0;
  for (let i = text.indexOf(open); i !== -1; i = text.indexOf(open, pos)) {
    out += text.slice(pos, i) + ' ';
    const j = text.indexOf(close, i + open.length);
    pos = j === -1 ? text.length : j + close.length;
  }
  return out + text.slice(pos);
}

/** The text with code blocks, inline code, LaTeX maths, URLs and LaTeX commands removed. */
export function proseOnly(text: string): string {
  let s = dropSpans(text, '```', '```');
  for (const [open, close] of [
    ['$$', '$$'],
    ['\\[', '\\]'],
    ['\\(', '\\)'],
  ])
    s = dropSpans(s, open, close);
  return s
    .replace(/`[^`\n]*`/g, ' ')
    .replace(/\$[^$\n]*\$/g, ' ')
    .replace(/https?:\/\/\S+/g, ' ')
    .replace(/\\[a-zA-Z]+/g, ' ')
    .replace(/\b[A-Za-z]+[_\d]\w*/g, ' ');
}

/** Counted units per script: CJK characters one each, alphabetic words one each. */
export function scriptCounts(text: string): Partial<Record<Script, number>> {
  const prose = proseOnly(text);
  const counts: Partial<Record<Script, number>> = {};
  for (const m of prose.match(CJK_CHAR) ?? []) counts[scriptOf(m)] = (counts[scriptOf(m)] ?? 0) + 1;
  for (const m of prose.match(WORD) ?? []) {
    if (MATH_WORDS.has(m.toLowerCase())) continue;
    counts[scriptOf(m)] = (counts[scriptOf(m)] ?? 0) + 1;
  }
  return counts;
}

/** Share of counted units in the language's scripts; null when nothing is countable. */
export function languageShare(text: string, lang: string): number | null {
  const code = languageCode(lang);
  if (code === null) throw new Error(`unknown language '${lang}'; known: ${Object.keys(LANGUAGES).join(', ')}`);
  const counts = scriptCounts(text);
  let total = 0,
    target = 0;
  for (const [script, n] of Object.entries(counts) as [Script, number][]) {
    total += n;
    if (LANGUAGES[code].includes(script)) target += n;
  }
  return total === 0 ? null : target / total;
}

/** The row's natural language as a code: its `field` when that names one (a code row's `language` is a
 * programming language, so it does not), else `fallback`. */
export function rowLanguage(row: Record<string, unknown> | undefined, field = 'language', fallback = 'en'): string {
  const own = row?.[field];
  return (typeof own === 'string' && languageCode(own)) || fallback;
}

/** Share of a completion's chain of thought written in `lang` (the prompt may have opened the think
 * block); null when it has nothing countable. */
export function thoughtLanguageShare(prompt: string | undefined, completion: string, lang: string): number | null {
  return languageShare(chainOfThought(withPromptTag(prompt, completion)), lang);
}

export const language: BuiltinReward = {
  defaults: { language: 'en', field: 'language' },
  doc: "share of the chain of thought in the target language (the row's 'field' when it names a language, else 'language')",
  make(options) {
    const fallback = String(options.language);
    if (languageCode(fallback) === null) throw new Error(`unknown language '${fallback}'; known: ${Object.keys(LANGUAGES).join(', ')}`);
    const field = String(options.field);
    return (b: RewardBatch): RewardValue[] =>
      b.completions.map((c, i) => thoughtLanguageShare(b.prompts[i], c, rowLanguage(b.rows[i], field, fallback)));
  },
};
