// Accuracy reward: 1 when the completion's final answer equals the row's reference, else 0 (null when
// the row has no reference). The answer comes from `<answer>`, else the last `\boxed{}`, else a
// "the answer is" phrase, else the last number or math expression; the reference may be a bare
// answer or a worked solution (`\boxed{}`, GSM8K's `#### 42`). Equality is decided in answer.ts.
import { answersEqual, parseAnswer } from './answer.ts';
import { countdownOf, countdownScore } from './countdown.ts';
import { matchBrace } from './latex.ts';
import { ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, lastBlock, withPromptTag } from './tags.ts';
import type { BuiltinReward, RewardBatch, RewardValue } from './types.ts';

/** Only the end of a long text is searched for a phrase or a last number. */
const TAIL_CHARS = 4000;
const MAX_EXTRACTED = 400;

/** Content of the last `\boxed{...}` or `\fbox{...}` (or `\boxed 5`), or null. */
export function lastBoxed(text: string): string | null {
  const i = Math.max(text.lastIndexOf('\\boxed'), text.lastIndexOf('\\fbox'));
  if (i === -1) return null;
  let j = i + (text.startsWith('\\boxed', i) ? 6 : 5);
  while (text[j] === ' ') j++;
  if (text[j] === '{') {
    const close = matchBrace(text, j);
    return close === -1 ? null : text.slice(j + 1, close).trim();
  }
  const m = /^[^\s$]+/.exec(text.slice(j, j + MAX_EXTRACTED));
  return m ? m[0] : null;
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

const NUMBER = /-?\d[\d,]*(?:\.\d+)?(?:\s*\/\s*\d+)?%?/g;

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
  const words = s.replace(/\\[a-zA-Z]+/g, ' ').match(/[a-zA-Z]{2,}/g) ?? [];
  const cjk = s.match(/[\u3400-\u9fff]/g) ?? [];
  return words.length < 3 && cjk.length < 3;
}

/** The answer stated in a piece of text: boxed, the whole text when it is short, a phrase, the last number. */
function fromText(text: string, wholeMayBeAnswer: boolean): string | null {
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

/** The answer of a reference: a number, a list, a bare answer or a worked solution. */
export function extractReference(ref: unknown): string | null {
  if (typeof ref === 'number' || typeof ref === 'bigint') return String(ref);
  if (Array.isArray(ref)) return ref.length ? ref.map(String).join(', ') : null;
  if (typeof ref !== 'string' || !ref.trim()) return null;
  const hash = ref.lastIndexOf('####');
  if (hash !== -1) return ref.slice(hash + 4).trim() || null;
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

/** 1 if correct, 0 if wrong or no answer, null when the row has no reference. */
export function accuracyScore(completion: string, reference: unknown, taggedOnly = false): RewardValue {
  const g = extractReference(reference);
  if (g === null) return null;
  const p = extractAnswer(completion, taggedOnly);
  if (p === null) return 0;
  try {
    return answersEqual(parseAnswer(p), parseAnswer(g)) ? 1 : 0;
  } catch {
    return 0; // a parser bug on hostile text must cost this completion, not the run
  }
}

export const accuracy: BuiltinReward = {
  defaults: { field: null, tagged_only: false },
  doc: `1 when the final answer equals the reference (Countdown rows with numbers and target: when it is an expression using each number once that reaches the target) (row field 'field', else the first of ${REFERENCE_FIELDS.join(', ')}), else 0; tagged_only: only an <answer> block or \\boxed{} counts as the answer (else also the last number)`,
  make(options) {
    const field = options.field as string | null, taggedOnly = options.tagged_only === true;
    return (b: RewardBatch): RewardValue[] =>
      b.completions.map((c, i) => {
        const row = b.rows[i] ?? {};
        // A Countdown row has many right answers: verify the expression instead of comparing.
        const puzzle = countdownOf(row);
        if (puzzle) return countdownScore(extractAnswer(withPromptTag(b.prompts[i], c), taggedOnly), puzzle.numbers, puzzle.target);
        const key = field ?? REFERENCE_FIELDS.find((f) => row[f] !== undefined && row[f] !== null);
        return key === undefined ? null : accuracyScore(withPromptTag(b.prompts[i], c), row[key], taggedOnly);
      });
  },
};
