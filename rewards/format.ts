// Format rewards for the R1 template `<think> reasoning </think> <answer> answer </answer>`:
// strict (the whole completion is exactly those two blocks), soft (a think block followed by an
// answer block somewhere) and tag-count partial credit (open-r1's: 0.25 per tag present exactly once).
import type { BuiltinReward, RewardBatch, RewardValue } from './types.ts';
import { ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, countOf, withPromptTag } from './tags.ts';

const TAGS = [THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE];

/** 1 when the text is exactly one non-empty think block then one non-empty answer block, with only
 * whitespace around and between them. */
export function strictFormat(text: string): number {
  const t = text.trim();
  if (!t.startsWith(THINK_OPEN) || !t.endsWith(ANSWER_CLOSE)) return 0;
  if (TAGS.some((tag) => countOf(t, tag) !== 1)) return 0;
  const a = t.indexOf(THINK_CLOSE),
    b = t.indexOf(ANSWER_OPEN);
  if (b < a) return 0;
  const thought = t.slice(THINK_OPEN.length, a),
    answer = t.slice(b + ANSWER_OPEN.length, t.length - ANSWER_CLOSE.length);
  return t.slice(a + THINK_CLOSE.length, b).trim() === '' && thought.trim() !== '' && answer.trim() !== '' ? 1 : 0;
}

/** 1 when a think block is followed (after whitespace) by an answer block, wherever they sit. */
export function softFormat(text: string): number {
  const firstOpen = text.indexOf(THINK_OPEN);
  if (firstOpen === -1) return 0;
  const lastAnswerClose = text.lastIndexOf(ANSWER_CLOSE);
  for (let a = text.indexOf(THINK_CLOSE, firstOpen); a !== -1; a = text.indexOf(THINK_CLOSE, a + 1)) {
    let b = a + THINK_CLOSE.length;
    while (b < text.length && /\s/.test(text[b])) b++;
    if (text.startsWith(ANSWER_OPEN, b) && lastAnswerClose > b) return 1;
  }
  return 0;
}

/** 0.25 for each of the four tags that appears exactly once. */
export function tagCount(text: string): number {
  return TAGS.reduce((s, tag) => s + (countOf(text, tag) === 1 ? 0.25 : 0), 0);
}

const perCompletion =
  (score: (text: string) => number) =>
  (b: RewardBatch): RewardValue[] =>
    b.completions.map((c, i) => score(withPromptTag(b.prompts[i], c)));

export const format: BuiltinReward = {
  defaults: {},
  doc: 'exactly one <think> block then one <answer> block and nothing else: 1, else 0',
  make: () => perCompletion(strictFormat),
};
export const formatSoft: BuiltinReward = {
  defaults: {},
  doc: 'a <think> block followed by an <answer> block anywhere in the completion: 1, else 0',
  make: () => perCompletion(softFormat),
};
export const tagCountReward: BuiltinReward = {
  defaults: {},
  doc: '0.25 for each of <think>, </think>, <answer>, </answer> that appears exactly once',
  make: () => perCompletion(tagCount),
};
