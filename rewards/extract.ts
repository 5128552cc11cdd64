// Where the final answer is in a text: a completion's (after its chain of thought) and a reference's
// (a bare answer or a worked solution). Both go through the same steps, so a gold read as a completion
// gives the same answer it gives as a reference. Steps, first that finds something wins:
//   1. the last \boxed{} (with the boxes just before it joined: \boxed{1}, \boxed{2} is 1, 2);
//   2. the whole text when it is only an answer: a bare LaTeX or plain math line (\frac{7}{3},
//      [2, +\infty), g(x) = 2x) or a choice letter ((B)), or, for a reference, any short text (fewer
//      than three plain words);
//   3. what follows "the final answer is", "Answer:" and the like, read to the end of its sentence;
//      when that sentence is prose, the value it opens with, else the value right after its first
//      verb or "=" that has one ("The smallest $k$ is 12" is 12);
//   4. the last delimited math ($...$, $$...$$, \(...\), \[...\]), bare math ending the text
//      (so x = \frac{7}{3}) or number, whichever ends last;
//   5. a text answer written as \text{...}, taken whole.
// Everything is a linear scan or a regex without nested quantifiers over a bounded tail of the text.
import { balanced, parseAnswer } from './answer.ts';
import { BudgetExceeded } from './budget.ts';
import { matchBrace } from './latex.ts';
import { ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, lastBlock } from './tags.ts';

/** Only the end of a long text is searched for a phrase or a last number. */
const TAIL_CHARS = 4000;
/** Longest extracted answer; longer candidates are not answers. */
export const MAX_EXTRACTED = 400;

type Span = { start: number; end: number; content: string };

// ---- \boxed{} --------------------------------------------------------------------------------

/** The last `\boxed{...}` or `\fbox{...}` (or `\boxed 5`) starting before `before`, or null (also
 * when it does not close). */
function boxBefore(text: string, before: number): Span | null {
  const i = Math.max(text.lastIndexOf('\\boxed', before), text.lastIndexOf('\\fbox', before));
  if (i === -1) return null;
  let j = i + (text.startsWith('\\boxed', i) ? 6 : 5);
  while (text[j] === ' ') j++;
  if (text[j] === '{') {
    const close = matchBrace(text, j);
    return close === -1 ? null : { start: i, end: close + 1, content: text.slice(j + 1, close).trim() };
  }
  const m = /^[^\s$]+/.exec(text.slice(j, j + MAX_EXTRACTED));
  return m ? { start: i, end: j + m[0].length, content: m[0] } : null;
}

// What may stand between boxes that together give one answer: \boxed{1}, \boxed{2}; \(\boxed{1}\)
// and \(\boxed{-2}\). Any other word in between (first \boxed{1}, then \boxed{2}) keeps only the last.
const BOX_JOINER = /^(?:\s|[,;.&$]|\\[()[\]]|\\q?quad|\\text\{\s*(?:and|or|,)?\s*\}|\\[,;: !]|and|or)*$/;
const MAX_BOXES = 50;

/** Content of the last `\boxed{...}`, joined with the boxes right before it as a list (repeats
 * dropped), or null. */
export function lastBoxed(text: string): string | null {
  const last = boxBefore(text, text.length);
  if (!last) return null;
  let box: Span = last;
  const contents = [box.content];
  for (let k = 0; k < MAX_BOXES; k++) {
    const prev: Span | null = box.start > 0 ? boxBefore(text, box.start - 1) : null;
    if (!prev || prev.end > box.start || box.start - prev.end > 60 || !BOX_JOINER.test(text.slice(prev.end, box.start))) break;
    contents.unshift(prev.content);
    box = prev;
  }
  return [...new Set(contents)].join(', ');
}

/** The distinct contents of the `\boxed{}`s in the text, in order: every one (`near` false, at most
 * MAX_BOXES, the last ones), or only the last and those before it in the same paragraph with at most
 * NEAR_CHARS between two (`near` true: \boxed{3} cm and \boxed{5} cm). */
export function boxedParts(text: string, near: boolean): string[] {
  const found: string[] = [];
  let after: Span | null = null;
  for (
    let box = boxBefore(text, text.length);
    box && found.length < MAX_BOXES;
    box = box.start > 0 ? boxBefore(text, box.start - 1) : null
  ) {
    if (
      after &&
      (box.end > after.start || (near && (after.start - box.end > NEAR_CHARS || /\n\s*\n/.test(text.slice(box.end, after.start)))))
    )
      break;
    found.unshift(box.content);
    after = box;
  }
  return [...new Set(found)];
}
const NEAR_CHARS = 100;

// ---- delimited math --------------------------------------------------------------------------

/** Math segments in order: $$...$$, $...$ (one line), \[...\], \(...\). Content is trimmed. */
export function mathSegments(text: string): Span[] {
  const out: Span[] = [];
  // Once a closer is missing from some point on, it is missing from every later point: searching
  // for it again would make the scan quadratic on hostile text (\[\[\[...).
  let noBracketClose = false,
    noParenClose = false;
  for (let i = 0; i < text.length; ) {
    const c = text[i];
    if (c === '$') {
      const display = text[i + 1] === '$';
      const open = display ? 2 : 1;
      const close = text.indexOf(display ? '$$' : '$', i + open);
      if (close === -1) break;
      const content = text.slice(i + open, close);
      // An inline $ that spans lines is a stray dollar (currency), not math.
      if (!display && content.includes('\n')) {
        i++;
        continue;
      }
      out.push({ start: i, end: close + open, content: content.trim() });
      i = close + open;
    } else if (c === '\\') {
      const n = text[i + 1];
      if ((n === '[' && !noBracketClose) || (n === '(' && !noParenClose)) {
        const close = text.indexOf(n === '[' ? '\\]' : '\\)', i + 2);
        if (close !== -1) {
          out.push({ start: i, end: close + 2, content: text.slice(i + 2, close).trim() });
          i = close + 2;
          continue;
        }
        if (n === '[') noBracketClose = true;
        else noParenClose = true;
      }
      i += 2; // an escaped character (\\, \{) is never a delimiter
    } else i++;
  }
  return out;
}

/** The inside of a text that is one math segment and nothing else ($$x$$, \[x\], \(x\), $x$), or null. */
function onlySegment(t: string): string | null {
  if (t.length > MAX_EXTRACTED + 4) return null;
  const segs = mathSegments(t);
  return segs.length === 1 && segs[0].start === 0 && segs[0].end === t.length ? segs[0].content : null;
}

// ---- what kind of text ------------------------------------------------------------------------

/** A short answer rather than a sentence: fewer than three plain words. */
export function answerLike(s: string): boolean {
  if (s.length > MAX_EXTRACTED) return false;
  // Environment names (\begin{array}{cc}) are markup, not words.
  const words = s.replace(/\\(?:begin|end)\{[a-zA-Z*]+\}(?:\{[lcr| ]*\})?|\\[a-zA-Z]+/g, ' ').match(/[a-zA-Z]{2,}/g) ?? [];
  const cjk = s.match(/[\u3400-\u9fff]/g) ?? [];
  return words.length < 3 && cjk.length < 3;
}

// Words a line of math may contain: functions, list words, and the names inside \begin{} / \end{}.
const MATH_WORDS = new Set(['sin', 'cos', 'tan', 'sec', 'csc', 'cot', 'log', 'ln', 'exp', 'sqrt', 'and', 'or', 'inf', 'infty']);
const ENVIRONMENT = /\\(?:begin|end)\{[a-zA-Z*]+\}(?:\{[lcr| ]*\})?/g;

// A unit written as text: \text{ cm}, \mbox{ m}^2.
const TEXT_UNIT = /\\(?:text|mbox|mathrm|textnormal)\s*\{\s*[a-zA-Z]{1,8}(?:\/[a-zA-Z]{1,3})?\s*\}/g;

/** One line of math and nothing else: no plain words but functions, "and"/"or" and units in \text{},
 * balanced, with a digit or a LaTeX command (\frac{7}{3}, [2, +\infty), g(x) = 2x, 15\text{ cm}). */
function pureMath(t: string): boolean {
  if (t.length > MAX_EXTRACTED || t.includes('\n') || !/[\d\\]/.test(t) || !balanced(t)) return false;
  const bare = t
    .replace(ENVIRONMENT, ' ')
    .replace(TEXT_UNIT, ' ')
    .replace(/\\[a-zA-Z]+/g, ' ');
  if (/[\u3400-\u9fff]/.test(bare)) return false;
  for (const w of bare.match(/[a-zA-Z]{2,}/g) ?? []) if (!MATH_WORDS.has(w.toLowerCase())) return false;
  return true;
}

/** Whether the text reads as a value (not as plain text) when parsed. Past a structural limit or the
 * time budget (BudgetExceeded) the comparison ends, as it would when the answer is parsed. */
function parsesAsValue(s: string): boolean {
  try {
    return parseAnswer(s).kind !== 'text';
  } catch (err) {
    if (err instanceof BudgetExceeded) throw err;
    return false;
  }
}

// ---- "the answer is" ---------------------------------------------------------------------------

const PHRASES = ['final answer is', 'answer is', 'answer:', 'result is', '答案是', '答案为', '答案：', '答案:', '结果是'];
// In a prose sentence after the phrase, the answer follows a verb or an equals sign.
const VERB = /(?:\s(?:is|are|was|equals|be)\s|=)/g;
const WORD_VERB = /\s(?:is|are|was|equals|be)\s/;

/** What follows the last "the answer is" (or 答案是) phrase, up to the end of the sentence. */
function afterPhrase(text: string): string | null {
  const tail = text.slice(-TAIL_CHARS);
  const lower = tail.toLowerCase();
  let at = -1,
    len = 0;
  for (const p of PHRASES) {
    const k = lower.lastIndexOf(p);
    if (k > at) [at, len] = [k, p.length];
  }
  if (at === -1) return null;
  let rest = tail.slice(at + len, at + len + MAX_EXTRACTED).replace(/^[\s:：*]+/, '');
  const first = mathSegments(rest)[0];
  if (first && first.start === 0 && first.content) return first.content;
  const nl = rest.indexOf('\n');
  if (nl !== -1) rest = rest.slice(0, nl);
  const boxed = lastBoxed(rest);
  if (boxed !== null) return boxed;
  const stop = rest.search(/\.\s|。|，|;|\.$/);
  const sentence = (stop === -1 ? rest : rest.slice(0, stop)).replace(/\*+$/, '').trim();
  if (!sentence || !balanced(sentence)) return null;
  if (answerLike(sentence) && !WORD_VERB.test(sentence)) return sentence;
  // A sentence that opens with the value ("12, since 13 fails"), else the value right after the
  // first verb that is followed by one ("The smallest $k$ is 12", "that x is 4").
  const lead = leadingValue(sentence);
  if (lead !== null) return lead;
  for (const m of sentence.matchAll(VERB)) {
    const stated = leadingValue(sentence.slice(m.index + m[0].length).trim());
    if (stated !== null) return stated;
  }
  return lastMathOrNumber(sentence) ?? sentence;
}

/** The value a piece of a sentence opens with: math in delimiters, the whole piece when it is short
 * ("12 cm", "\frac{7}{3}") up to a clause after a comma, else a number; null if it opens with words. */
function leadingValue(s: string): string | null {
  const seg = mathSegments(s)[0];
  if (seg && seg.start === 0 && seg.content) return seg.content;
  const piece = s.replace(/,\s*[a-zA-Z]{2,}[^]*$/, '').trim();
  if (piece && /^[-+(\[\\\d.]/.test(piece) && answerLike(piece) && !WORD_VERB.test(piece)) return piece;
  const m = /^-?(?:\d[\d,]*(?:\.\d+)?|\.\d+)%?/.exec(s);
  return m ? m[0].replace(/,+$/, '') : null;
}

// ---- the last number or math -----------------------------------------------------------------

// A number not inside a word (AZYUK2A states no answer): 1,234.5, 1 000 (groups of three), .5, 3/4, 20%.
// Scientific notation (1.5e3, 1.5 \times 10^{3}) is one number.
const NUMBER =
  /(?<![\w.^_])-?(?:[1-9]\d{0,2}(?: \d{3})+(?![\d.,])|\d[\d,]*(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+(?![\w.])|\s*(?:\\times|\\cdot|×)\s*10\^(?:\{-?\d+\}|-?\d))?(?:\s*\/\s*\d+)?%?/g;

const TEXT_GROUP = /^\\(?:text|textbf|textit|textrm|mathrm|mbox|textnormal)\s*\{/;
// A token of a line: a command, an escaped character, a word, a number, one other character.
const TOKEN = /\\[a-zA-Z]+|\\.|[a-zA-Z]+|\d+(?:\.\d+)?|\s+|[^]/g;

/** Bare math that ends a line of prose: "so x = \frac{7}{3}" gives "x = \frac{7}{3}", "the sum is
 * 8 + 2 + 3" gives "8 + 2 + 3". It starts after the last plain word, colon or CJK character outside
 * braces; a word inside \text{} (a unit) does not end it. Null unless it is more than a number (a
 * command or an operator) and reads as a value. */
function trailingMath(line: string): string | null {
  let t = line.replace(/[\s.,;!?。]+$/, '');
  // One word after a value is its unit: x = \frac{15}{2} dollars.
  const unit = /[\d}]\s+[a-zA-Z]{2,12}$/.exec(t);
  if (unit) t = t.slice(0, unit.index + 1);
  if (t.length > MAX_EXTRACTED || !/\\[a-zA-Z]|\d\s*[-+*/^=<>]\s*[\d\\(a-zA-Z]/.test(t)) return null;
  let start = 0,
    depth = 0;
  for (const m of t.matchAll(TOKEN)) {
    const tok = m[0],
      at = m.index;
    if (tok === '{') depth++;
    else if (tok === '}') {
      if (--depth < 0) [depth, start] = [0, at + 1];
    } else if (depth === 0) {
      const word = /^[a-zA-Z]{2,}$/.test(tok) && !MATH_WORDS.has(tok.toLowerCase());
      // A single letter before a space and a word is English ("a", "I"), not a variable.
      const article =
        /^[aAI]$/.test(tok) &&
        /^\s+[a-zA-Z\\]/.test(t.slice(at + 1)) &&
        !/^\s+(?:=|\\(?:le|ge|ne|in|cdot|times)(?![a-zA-Z]))/.test(t.slice(at + 1));
      if (word || article || tok === ':' || tok === '：' || tok === '$' || /[\u3400-\u9fff]/.test(tok)) start = at + tok.length;
      else if (tok.startsWith('\\') && TEXT_GROUP.test(t.slice(at))) {
        // \text{ cm} after a value is a unit and stays; \text{so we get} before it is prose.
        const open = t.indexOf('{', at);
        const close = matchBrace(t, open);
        if (close === -1) return null;
        const after = t.slice(close + 1).replace(/^\s*\^\s*\{?\s*[23]\s*\}?/, ''); // \text{ cm}^2 is a unit
        if (/[a-zA-Z]{2,}/.test(t.slice(open, close)) && /[\d\\]/.test(after)) start = close + 1;
      }
    }
  }
  const run = t
    .slice(start)
    .replace(/^[\s,=]+/, '')
    .trim();
  if (!run || !/[\d\\]/.test(run) || !balanced(run) || !/\\[a-zA-Z]|[-+*/^=<>]/.test(run.replace(/^-/, ''))) return null;
  return parsesAsValue(run) ? run : null;
}

/** The last delimited math, bare math ending the text, or number, whichever ends last. */
function lastMathOrNumber(text: string): string | null {
  const tail = text.slice(-TAIL_CHARS);
  let best: string | null = null,
    end = -1;
  for (const m of tail.matchAll(NUMBER)) {
    best = m[0].replace(/,+$/, '');
    end = m.index + m[0].length;
  }
  const segs = mathSegments(tail);
  const last = [...segs].reverse().find((s) => s.content && s.content.length <= MAX_EXTRACTED);
  if (last && last.end >= end) [best, end] = [last.content, last.end];
  // Bare math on the last line, after any delimited math.
  const lineStart = tail.lastIndexOf('\n', tail.trimEnd().length - 1) + 1;
  const bare = trailingMath(tail.slice(Math.max(lineStart, segs.length ? segs[segs.length - 1].end : 0)));
  if (bare !== null) best = bare;
  return best;
}

// ---- one text --------------------------------------------------------------------------------

/** `\text{...}` (in math delimiters or not) and nothing else: a text answer. */
function textAnswer(t: string): string | null {
  const s = onlySegment(t) ?? t;
  const m = TEXT_GROUP.exec(s);
  if (!m) return null;
  const close = matchBrace(s, m[0].length - 1);
  return close === s.length - 1 && s.length <= MAX_EXTRACTED ? s : null;
}

/** The answer stated in a piece of text (steps 1-5 above). `isReference`: a short text is taken whole. */
export function fromText(text: string, isReference: boolean): string | null {
  // An escaped dollar is a currency sign, never part of the value; left in, it breaks $...$ math.
  if (text.includes('\\$')) text = text.replace(/\\\$/g, ' ');
  const boxed = lastBoxed(text);
  if (boxed !== null) return boxed;
  const t = text.trim();
  if (!t) return null;
  // GSM8K's convention: the answer follows ####.
  const hash = t.lastIndexOf('####');
  if (hash !== -1) {
    const stated = t
      .slice(hash + 4)
      .split('\n')[0]
      .trim();
    if (stated && answerLike(stated) && !/[a-zA-Z]{2,}/.test(stated.replace(/\\[a-zA-Z]+/g, '')) && parsesAsValue(stated)) return stated;
  }
  if (isReference && answerLike(t)) return t;
  const whole = onlySegment(t) ?? t;
  if (pureMath(whole) && parsesAsValue(whole)) return whole;
  // A completion that is only a choice letter ((B), B), B.) or a word or two (yes, Evelyn, no
  // solution) states that answer; "It is 17" states 17, found below.
  if (/^\(?[A-J]\)?\.?$/.test(whole) || (answerLike(t) && /^[a-zA-Z][a-zA-Z -]*\.?$/.test(t))) return whole;
  return afterPhrase(t) ?? lastMathOrNumber(t) ?? textAnswer(t);
}

/** The final answer of a completion, or null when it states none. `taggedOnly`: only an answer the
 * completion marks as final (an `<answer>` block or `\boxed{}`) counts, as R1's accuracy reward asks. */
export function extractAnswer(completion: string, taggedOnly = false): string | null {
  const block = lastBlock(completion, ANSWER_OPEN, ANSWER_CLOSE);
  if (block !== null && block.trim()) return fromText(block, true);
  if (taggedOnly) {
    const boxed = lastBoxed(completion);
    return boxed === null ? null : fromText(boxed, true);
  }
  const end = completion.lastIndexOf(THINK_CLOSE);
  const found = fromText(end === -1 ? completion : completion.slice(end + THINK_CLOSE.length), false);
  return found ?? (end === -1 ? null : fromText(completion.slice(0, end), false));
}

/** The part of a completion its final answer is read from: after `</think>` when that has text. */
export function answerRegion(completion: string): string {
  const block = lastBlock(completion, ANSWER_OPEN, ANSWER_CLOSE);
  if (block !== null && block.trim()) return block;
  const end = completion.lastIndexOf(THINK_CLOSE);
  const after = end === -1 ? completion : completion.slice(end + THINK_CLOSE.length);
  return after.trim() || completion;
}

/** Where a reference's answer is: 'answer' (a bare answer, or one in \boxed{} or after GSM8K's ####),
 * 'solution' (a worked solution: its ####, last \boxed{} or "the final answer is"; MATH, NuminaMath),
 * or 'auto' (either: a short text is the answer, a long one is read as a solution). */
export type GoldFrom = 'auto' | 'answer' | 'solution';
export const GOLD_FROM: readonly GoldFrom[] = ['auto', 'answer', 'solution'];

/** The answer of a reference: a number, a list, a bare answer or a worked solution. */
export function extractReference(ref: unknown, from: GoldFrom = 'auto'): string | null {
  if (typeof ref === 'number' || typeof ref === 'bigint') return String(ref);
  if (Array.isArray(ref)) return ref.length ? ref.map(String).join(', ') : null;
  if (typeof ref !== 'string' || !ref.trim()) return null;
  const hash = ref.lastIndexOf('####');
  if (hash !== -1) return ref.slice(hash + 4).trim() || null;
  if (from === 'answer') return lastBoxed(ref) ?? ref.trim();
  if (from === 'solution') return lastBoxed(ref) ?? afterPhrase(ref);
  return fromText(ref, true);
}
