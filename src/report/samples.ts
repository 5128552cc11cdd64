// The samples browser's data: the rows of samples.jsonl, trimmed to what a page can carry. Prompts
// repeat across a group (and across steps), so each is stored once and rows point at it.

/** Text budget of one samples page; past it the earliest steps are left out (the latest matter most while training). */
export const SAMPLES_BUDGET_CHARS = 8_000_000;
/** A completion longer than this is cut (with a mark) in the page. */
const MAX_COMPLETION_CHARS = 6000;

export type SampleRow = {
  /** RL step; null for an eval's samples, which have none. */
  step: number | null;
  /** Index into `prompts`. */
  p: number;
  completion: string;
  reward: number | null;
  advantage: number | null;
  rewards: Record<string, number | null>;
  finish: string | null;
  answer?: string;
};

export type SamplesData = {
  prompts: string[];
  rows: SampleRow[];
  steps: number[];
  fns: string[];
  /** Rows of the file, and how many were left out for the budget. */
  total: number;
  dropped: number;
};

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? Number(v.toPrecision(5)) : null);

export function samplesData(raw: Record<string, unknown>[], budget = SAMPLES_BUDGET_CHARS): SamplesData {
  // Keep the latest rows within the budget, whole steps only.
  let size = 0, from = raw.length;
  for (let i = raw.length - 1; i >= 0; i--) {
    size += String(raw[i].completion ?? '').length + 100;
    if (size > budget) {
      const step = raw[i].step;
      while (from < raw.length && raw[from].step === step) from++;
      break;
    }
    from = i;
  }
  const kept = raw.slice(from);
  const prompts: string[] = [];
  const index = new Map<string, number>();
  const fns = new Set<string>();
  const rows = kept.map((r): SampleRow => {
    const prompt = String(r.prompt ?? '');
    if (!index.has(prompt)) index.set(prompt, prompts.push(prompt) - 1);
    const rewards: Record<string, number | null> = {};
    if (r.rewards && typeof r.rewards === 'object') for (const [k, v] of Object.entries(r.rewards)) { fns.add(k); rewards[k] = num(v); }
    const text = String(r.completion ?? '');
    return {
      step: num(r.step), p: index.get(prompt)!,
      completion: text.length > MAX_COMPLETION_CHARS ? `${text.slice(0, MAX_COMPLETION_CHARS)} …[cut]` : text,
      reward: num(r.reward), advantage: num(r.advantage), rewards,
      finish: typeof r.finish_reason === 'string' ? r.finish_reason : null,
      ...(typeof r.answer === 'string' ? { answer: r.answer } : {}),
    };
  });
  const steps = [...new Set(rows.flatMap((r) => (r.step === null ? [] : [r.step])))].sort((a, b) => a - b);
  return { prompts, rows, steps, fns: [...fns], total: raw.length, dropped: from };
}
