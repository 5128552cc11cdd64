// Accuracy reward: 1 when the completion's final answer equals the row's reference, else 0 (null when
// the row has no reference, or one that does not parse). The answer comes from `<answer>`, else the
// last `\boxed{}` (with the boxes right before it: `\boxed{1}, \boxed{2}` is the answer 1, 2), else
// a "the answer is" phrase, else the last number or math expression; the reference may be a bare
// answer or a worked solution (`\boxed{}`, GSM8K's `#### 42`). Equality is decided in answer.ts,
// under a time budget per comparison (budget.ts).
import { answersEqual, parseAnswer, unparsable, type Answer } from './answer.ts';
import { BudgetExceeded, withBudget } from './budget.ts';
import { countdownOf, countdownScore } from './countdown.ts';
import { matchBrace } from './latex.ts';
import { NoteBook, type NotingRewardFn } from './notes.ts';
import { ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, lastBlock, withPromptTag } from './tags.ts';
import type { BuiltinReward, RewardBatch, RewardValue } from './types.ts';

/** Only the end of a long text is searched for a phrase or a last number. */
const TAIL_CHARS = 4000;
const MAX_EXTRACTED = 400;

type Box = { start: number; end: number; content: string };

/** The last `\boxed{...}` or `\fbox{...}` (or `\boxed 5`) starting before `before`, or null (also
 * when it does not close). */
function boxBefore(text: string, before: number): Box | null {
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
  let box: Box = last;
  const contents = [box.content];
  for (let k = 0; k < MAX_BOXES; k++) {
    const prev: Box | null = box.start > 0 ? boxBefore(text, box.start - 1) : null;
    if (!prev || prev.end > box.start || box.start - prev.end > 60 || !BOX_JOINER.test(text.slice(prev.end, box.start))) break;
    contents.unshift(prev.content);
    box = prev;
  }
  return [...new Set(contents)].join(', ');
}

const PHRASES = ['final answer is', 'answer is', 'answer:', 'result is', '答案是', '答案为', '答案：', '答案:', '结果是'];

/** What follows the last "the answer is" (or 答案是) phrase, up to the end of the sentence. */
function afterPhrase(text: string): string | null {
  const tail = text.slice(-TAIL_CHARS);
  const lower = tail.toLowerCase();
  let at = -1, len = 0;
  for (const p of PHRASES) {
    const k = lower.lastIndexOf(p);
    if (k > at) [at, len] = [k, p.length];
  }
  if (at === -1) return null;
  let rest = tail.slice(at + len, at + len + MAX_EXTRACTED).replace(/^[\s:：*]+/, '');
  const nl = rest.indexOf('\n');
  if (nl !== -1) rest = rest.slice(0, nl);
  const math = /^\$\$?([^$]+)\$/.exec(rest) ?? /^\\\((.+?)\\\)/.exec(rest);
  if (math) return math[1].trim();
  const boxed = lastBoxed(rest);
  if (boxed !== null) return boxed;
  const stop = rest.search(/\.\s|。|，|;|\.$/);
  const out = (stop === -1 ? rest : rest.slice(0, stop)).replace(/\*+$/, '').trim();
  return out || null;
}

// A number not inside a word (AZYUK2A states no answer): 1,234.5, 1 000 (groups of three), .5, 3/4, 20%.
// Scientific notation (1.5e3, 1.5 \times 10^{3}) is one number.
const NUMBER = /(?<![\w.])-?(?:[1-9]\d{0,2}(?: \d{3})+(?![\d.,])|\d[\d,]*(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+(?![\w.])|\s*(?:\\times|\\cdot|×)\s*10\^(?:\{-?\d+\}|-?\d))?(?:\s*\/\s*\d+)?%?/g;

/** The last inline math segment or number in the text, whichever ends later. */
function lastMathOrNumber(text: string): string | null {
  const tail = text.slice(-TAIL_CHARS);
  let best: string | null = null, end = -1;
  for (const m of tail.matchAll(NUMBER)) {
    best = m[0].replace(/,+$/, '');
    end = m.index + m[0].length;
  }
  const close = tail.lastIndexOf('$');
  if (close >= end) {
    const open = tail.lastIndexOf('$', close - 1);
    const seg = open === -1 ? '' : tail.slice(open + 1, close).trim();
    if (seg && seg.length <= MAX_EXTRACTED) best = seg;
  }
  return best;
}

/** A short answer rather than a sentence: fewer than three plain words. */
function answerLike(s: string): boolean {
  if (s.length > MAX_EXTRACTED) return false;
  // Environment names (\begin{array}{cc}) are markup, not words.
  const words = s.replace(/\\(?:begin|end)\{[a-zA-Z*]+\}(?:\{[lcr| ]*\})?|\\[a-zA-Z]+/g, ' ').match(/[a-zA-Z]{2,}/g) ?? [];
  const cjk = s.match(/[\u3400-\u9fff]/g) ?? [];
  return words.length < 3 && cjk.length < 3;
}

/** The answer stated in a piece of text: boxed, the whole text when it is short, a phrase, the last number. */
function fromText(text: string, wholeMayBeAnswer: boolean): string | null {
  // An escaped dollar is a currency sign, never part of the value; left in, it breaks $...$ math.
  if (text.includes('\\$')) text = text.replace(/\\\$/g, ' ');
  const boxed = lastBoxed(text);
  if (boxed !== null) return boxed;
  const t = text.trim();
  if (!t) return null;
  if (wholeMayBeAnswer && answerLike(t)) return t;
  return afterPhrase(t) ?? lastMathOrNumber(t);
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

/** Whether a predicted answer equals a reference (bare or a worked solution). */
export function answersMatch(pred: string, ref: string): boolean {
  const p = fromText(pred, true), g = extractReference(ref);
  if (p === null || g === null) return false;
  try {
    return answersEqual(parseAnswer(p), parseAnswer(g));
  } catch {
    return false;
  }
}

const REFERENCE_FIELDS = ['answer', 'solution', 'reference', 'ground_truth', 'gold'];

/** Why a row was not scored on its merits: the comparison ran out of time or was past a size limit
 * (scored 0), the reference does not parse (null), or the verifier threw (scored 0). */
export type AccuracyNote = 'timeout' | 'too_complex' | 'gold_unparsable' | 'verifier_error';
export type Verdict = { score: RewardValue; note?: AccuracyNote };
export type JudgeOptions = { taggedOnly?: boolean; goldFrom?: GoldFrom; timeoutMs?: number };

const hasReference = (ref: unknown) =>
  ref !== undefined && ref !== null && !(typeof ref === 'string' && !ref.trim()) && !(Array.isArray(ref) && ref.length === 0);

/** The accuracy of one completion against one reference, with the reason when it is not a plain 1/0. */
export function judge(completion: string, reference: unknown, opts: JudgeOptions = {}): Verdict {
  if (!hasReference(reference)) return { score: null };
  const g = extractReference(reference, opts.goldFrom ?? 'auto');
  if (g === null) return { score: null, note: 'gold_unparsable' };
  let gold: Answer;
  try {
    gold = parseAnswer(g);
  } catch {
    return { score: null, note: 'gold_unparsable' };
  }
  if (unparsable(gold)) return { score: null, note: 'gold_unparsable' };
  try {
    return withBudget(opts.timeoutMs ?? 1000, (): Verdict => {
      const p = extractAnswer(completion, opts.taggedOnly === true);
      if (p === null) return { score: 0 };
      return { score: answersEqual(parseAnswer(p), gold) ? 1 : 0 };
    });
  } catch (err) {
    // Hostile or pathological text costs this completion, never the run.
    return { score: 0, note: err instanceof BudgetExceeded ? err.reason : 'verifier_error' };
  }
}

/** 1 if correct, 0 if wrong or no answer, null when the row has no reference (or one that does not parse). */
export function accuracyScore(completion: string, reference: unknown, taggedOnly = false): RewardValue {
  return judge(completion, reference, { taggedOnly }).score;
}

export const accuracy: BuiltinReward = {
  // `field` is the older name of answer_field; the error for an unknown option lists them in this order.
  defaults: { field: null, tagged_only: false, answer_field: null, gold_from: 'auto', timeout_s: 1 },
  doc:
    `1 when the final answer equals the reference (Countdown rows with numbers and target: when it is an expression using each number once that reaches the target), else 0; ` +
    `null when the row has no reference or its reference does not parse (counted as gold_unparsable). ` +
    `answer_field (or field): the row field holding the reference, else the first of ${REFERENCE_FIELDS.join(', ')}; ` +
    `gold_from: auto | answer (a bare answer, GSM8K's #### 42, or \\boxed{}) | solution (a worked solution's last \\boxed{} or "final answer is": MATH, NuminaMath); ` +
    `tagged_only: only an <answer> block or \\boxed{} counts as the answer (else also the last number); ` +
    `timeout_s: time budget per comparison, after which the completion scores 0 (counted as timeout)`,
  make(options) {
    // Unset options take their defaults: tests and user code may call make() with a partial object.
    const field = (options.answer_field ?? options.field ?? null) as string | null, taggedOnly = options.tagged_only === true;
    const goldFrom = (options.gold_from ?? 'auto') as GoldFrom, timeout = (options.timeout_s ?? 1) as number;
    if (!GOLD_FROM.includes(goldFrom)) throw new Error(`gold_from must be one of ${GOLD_FROM.join(', ')}, got ${JSON.stringify(goldFrom)}`);
    if (typeof timeout !== 'number' || !(timeout > 0)) throw new Error(`timeout_s must be a number > 0, got ${JSON.stringify(timeout)}`);
    if (field !== null && typeof field !== 'string') throw new Error(`answer_field must be a field name, got ${JSON.stringify(field)}`);
    const notes = new NoteBook();
    const fn: NotingRewardFn = (b: RewardBatch): RewardValue[] =>
      b.completions.map((c, i) => {
        const row = b.rows[i] ?? {};
        // A Countdown row has many right answers: verify the expression instead of comparing.
        const puzzle = countdownOf(row);
        if (puzzle) return countdownScore(extractAnswer(withPromptTag(b.prompts[i], c), taggedOnly), puzzle.numbers, puzzle.target);
        const key = field ?? (goldFrom === 'solution' && row.solution != null ? 'solution' : REFERENCE_FIELDS.find((f) => row[f] !== undefined && row[f] !== null));
        if (key === undefined) return null;
        const v = judge(withPromptTag(b.prompts[i], c), row[key], { taggedOnly, goldFrom, timeoutMs: timeout * 1000 });
        if (v.note) notes.add(b, v.note, v.note === 'gold_unparsable' ? `row ${i} ${key}: ${String(row[key])}` : `row ${i}`);
        return v.score;
      });
    fn.notes = (b) => notes.take(b);
    return fn;
  },
};
