// Accuracy reward: 1 when the completion's final answer equals the row's reference, else 0 (null when
// the row has no reference, or one that does not parse). A completion identical to its reference is
// right whatever the form; otherwise the answer is found the same way in both (extract.ts: \boxed{},
// a bare answer, "the final answer is", the last delimited math, bare math or number) and compared
// in answer.ts, under a time budget per comparison (budget.ts). A reference with several parts may
// also be matched by the completion's boxes taken together (multiPartMatches).
import { answersEqual, parseAnswer, unparsable, type Answer } from './answer.ts';
import { BudgetExceeded, withBudget } from './budget.ts';
import { countdownOf, countdownScore } from './countdown.ts';
import { answerRegion, boxedParts, extractAnswer, extractReference, fromText, GOLD_FROM, type GoldFrom } from './extract.ts';
import { NoteBook, type NotingRewardFn } from './notes.ts';
import { withPromptTag } from './tags.ts';
import type { BuiltinReward, RewardBatch, RewardValue } from './types.ts';

export { extractAnswer, extractReference, lastBoxed, GOLD_FROM, type GoldFrom } from './extract.ts';

/** Whether a predicted answer equals a reference (bare or a worked solution). */
export function answersMatch(pred: string, ref: string): boolean {
  const p = fromText(pred, true),
    g = extractReference(ref);
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
  let gold: Answer;
  try {
    const g = extractReference(reference, opts.goldFrom ?? 'auto');
    if (g === null) return { score: null, note: 'gold_unparsable' };
    gold = parseAnswer(g);
  } catch {
    return { score: null, note: 'gold_unparsable' };
  }
  if (unparsable(gold)) return { score: null, note: 'gold_unparsable' };
  // Identity first: a completion that is its reference, character for character, is right whatever
  // the reference's form (display math, an equation, a sentence of text).
  if (typeof reference === 'string' && completion.trim() === reference.trim()) return { score: 1 };
  try {
    return withBudget(opts.timeoutMs ?? 1000, (): Verdict => {
      const p = extractAnswer(completion, opts.taggedOnly === true);
      if (p !== null && answersEqual(parseAnswer(p), gold)) return { score: 1 };
      return { score: multiPartMatches(completion, gold) ? 1 : 0 };
    });
  } catch (err) {
    // Hostile or pathological text costs this completion, never the run.
    return { score: 0, note: err instanceof BudgetExceeded ? err.reason : 'verifier_error' };
  }
}

/** A reference with several parts (a set, a tuple, two equations) against a completion that boxes
 * its parts apart. A set: the last boxes of one paragraph with words or units between them (x =
 * \boxed{2} cm and y = \boxed{3} cm), read as one list; boxing more candidates than the set has
 * members makes the list differ. A tuple (the parts of a multi-part question, (a) \boxed{4} ... (b)
 * \boxed{5}): every distinct box of the answer, in order, when there are as many as the tuple has
 * items. */
function multiPartMatches(completion: string, gold: Answer): boolean {
  const region = answerRegion(completion);
  if (gold.kind === 'set' && gold.items.length >= 2) {
    const boxes = boxedParts(region, true);
    return boxes.length >= 2 && boxes.length <= gold.items.length && answersEqual(parseAnswer(boxes.join(', ')), gold);
  }
  if (gold.kind === 'tuple' && gold.open === '(' && gold.close === ')' && gold.items.length >= 2) {
    const boxes = boxedParts(region, false);
    return boxes.length === gold.items.length && answersEqual(parseAnswer(`(${boxes.join(', ')})`), gold);
  }
  return false;
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
    const field = (options.answer_field ?? options.field ?? null) as string | null,
      taggedOnly = options.tagged_only === true;
    const goldFrom = (options.gold_from ?? 'auto') as GoldFrom,
      timeout = (options.timeout_s ?? 1) as number;
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
        const key =
          field ??
          (goldFrom === 'solution' && row.solution != null
            ? 'solution'
            : REFERENCE_FIELDS.find((f) => row[f] !== undefined && row[f] !== null));
        if (key === undefined) return null;
        const v = judge(withPromptTag(b.prompts[i], c), row[key], { taggedOnly, goldFrom, timeoutMs: timeout * 1000 });
        if (v.note) notes.add(b, v.note, v.note === 'gold_unparsable' ? `row ${i} ${key}: ${String(row[key])}` : `row ${i}`);
        return v.score;
      });
    fn.notes = (b) => notes.take(b);
    return fn;
  },
};
