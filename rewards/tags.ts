// Reasoning-template helpers shared by the format, language and accuracy rewards. All scans are
// indexOf-based (linear), so huge or hostile completions cannot make them hang.

export const THINK_OPEN = '<think>',
  THINK_CLOSE = '</think>',
  ANSWER_OPEN = '<answer>',
  ANSWER_CLOSE = '</answer>';

/** Occurrences of `needle` in `text`. */
export function countOf(text: string, needle: string): number {
  let n = 0;
  for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

/** The completion as the model's full turn: when the prompt already ends with `<think>` (the R1-Zero
 * template opens the block for the model), the completion is read with that tag in front. */
export function withPromptTag(prompt: string | undefined, completion: string): string {
  return prompt !== undefined && prompt.trimEnd().endsWith(THINK_OPEN) && !completion.trimStart().startsWith(THINK_OPEN)
    ? THINK_OPEN + completion
    : completion;
}

/** Text between the last `open` and the `close` after it (to the end when unclosed); null if no `open`. */
export function lastBlock(text: string, open: string, close: string): string | null {
  const i = text.lastIndexOf(open);
  if (i === -1) return null;
  const j = text.indexOf(close, i + open.length);
  return text.slice(i + open.length, j === -1 ? undefined : j);
}

/** The chain of thought: the `<think>` block, else what comes before `<answer>`, else everything. */
export function chainOfThought(text: string): string {
  const i = text.indexOf(THINK_OPEN);
  if (i !== -1) {
    const j = text.indexOf(THINK_CLOSE, i);
    return text.slice(i + THINK_OPEN.length, j === -1 ? undefined : j);
  }
  const j = text.indexOf(THINK_CLOSE);
  if (j !== -1) return text.slice(0, j);
  const k = text.indexOf(ANSWER_OPEN);
  return k === -1 ? text : text.slice(0, k);
}
