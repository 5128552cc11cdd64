// The samples browser's data: the rows of samples.jsonl, trimmed to what a page can carry. Prompts
// repeat across a group (and across steps), so each is stored once and rows point at it. The page
// shows each prompt's question first and the template around it folded: the template's boilerplate
// is the same in every row and would hide the one part that differs.
import { TEMPLATES } from '../data/chat.ts';

/** Text budget of one samples page; past it the earliest steps are left out (the latest matter most while training). */
export const SAMPLES_BUDGET_CHARS = 8_000_000;
/** A completion longer than this is cut (with a mark) in the page. */
const MAX_COMPLETION_CHARS = 6000;
/** A turn's text, a call's code or its output longer than this is cut (with a mark). */
const MAX_TURN_PART_CHARS = 2000;

/** A tool call as the page shows it (rewards/types.ts ToolCall). */
export type SampleCall = { tool: string; code: string; output: string; error: string | null };
/** A turn of a multi-turn completion: what the model wrote, and the call it ended with. */
export type SampleTurn = { text: string; call: SampleCall | null };

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
  /** The turns of a completion with tool calls (GRPO with tools; an eval's when it writes them),
   * which the page shows as turns: the model's text, the call, its output and its error apart. */
  turns?: SampleTurn[];
  /** Tokens the model wrote and tokens tools wrote, when the stage logs them. */
  modelTokens?: number;
  toolTokens?: number;
};

export type SamplesData = {
  /** The prompts as the model saw them (template applied). */
  prompts: string[];
  /** The question inside each prompt (the row's prompt field), by the same index; null when unknown. */
  questions: (string | null)[];
  rows: SampleRow[];
  steps: number[];
  fns: string[];
  /** Rows of the file, and how many were left out for the budget. */
  total: number;
  dropped: number;
};

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? Number(v.toPrecision(5)) : null);

const cut = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)} …[cut]` : text);
const str = (v: unknown) => (typeof v === 'string' ? v : '');

/** A row's turns as the page carries them (each part cut to MAX_TURN_PART_CHARS); undefined when the
 * row has none or they are not an array of turns. */
export function turnsOf(raw: unknown): SampleTurn[] | undefined {
  if (!Array.isArray(raw) || !raw.length) return undefined;
  return raw.map((t: unknown): SampleTurn => {
    const turn = (typeof t === 'object' && t !== null ? t : {}) as { text?: unknown; call?: unknown };
    const c = (typeof turn.call === 'object' && turn.call !== null ? turn.call : null) as Record<string, unknown> | null;
    return {
      text: cut(str(turn.text), MAX_TURN_PART_CHARS),
      call: c && {
        tool: str(c.tool),
        code: cut(str(c.code), MAX_TURN_PART_CHARS),
        output: cut(str(c.output), MAX_TURN_PART_CHARS),
        error: typeof c.error === 'string' ? cut(c.error, MAX_TURN_PART_CHARS) : null,
      },
    };
  });
}

/** The question inside a templated prompt: the row's own field when the stage wrote it (`question`),
 * else the part a named template (r1-zero) wrapped; null when neither applies (a chat template). */
export function questionOf(prompt: string, written: unknown): string | null {
  if (typeof written === 'string') return written;
  for (const t of Object.values(TEMPLATES)) {
    const [head, tail, ...more] = t.split('{prompt}');
    if (more.length || tail === undefined || (head === '' && tail === '')) continue;
    if (prompt.length >= head.length + tail.length && prompt.startsWith(head) && prompt.endsWith(tail))
      return prompt.slice(head.length, prompt.length - tail.length);
  }
  return null;
}

export function samplesData(raw: Record<string, unknown>[], budget = SAMPLES_BUDGET_CHARS): SamplesData {
  // Keep the latest rows within the budget, whole steps only.
  let size = 0,
    from = raw.length;
  for (let i = raw.length - 1; i >= 0; i--) {
    size += String(raw[i].completion ?? '').length + 100 + (Array.isArray(raw[i].turns) ? JSON.stringify(raw[i].turns).length : 0);
    if (size > budget) {
      const step = raw[i].step;
      while (from < raw.length && raw[from].step === step) from++;
      break;
    }
    from = i;
  }
  const kept = raw.slice(from);
  const prompts: string[] = [];
  const questions: (string | null)[] = [];
  const index = new Map<string, number>();
  const fns = new Set<string>();
  const rows = kept.map((r): SampleRow => {
    const prompt = String(r.prompt ?? '');
    if (!index.has(prompt)) {
      index.set(prompt, prompts.push(prompt) - 1);
      questions.push(questionOf(prompt, r.question));
    }
    const rewards: Record<string, number | null> = {};
    if (r.rewards && typeof r.rewards === 'object')
      for (const [k, v] of Object.entries(r.rewards)) {
        fns.add(k);
        rewards[k] = num(v);
      }
    const text = String(r.completion ?? '');
    const turns = turnsOf(r.turns);
    return {
      step: num(r.step),
      p: index.get(prompt)!,
      completion: cut(text, MAX_COMPLETION_CHARS),
      reward: num(r.reward),
      advantage: num(r.advantage),
      rewards,
      finish: typeof r.finish_reason === 'string' ? r.finish_reason : null,
      ...(typeof r.answer === 'string' ? { answer: r.answer } : {}),
      ...(turns ? { turns } : {}),
      ...(typeof r.model_tokens === 'number' ? { modelTokens: r.model_tokens } : {}),
      ...(typeof r.tool_tokens === 'number' ? { toolTokens: r.tool_tokens } : {}),
    };
  });
  const steps = [...new Set(rows.flatMap((r) => (r.step === null ? [] : [r.step])))].sort((a, b) => a - b);
  return { prompts, questions, rows, steps, fns: [...fns], total: raw.length, dropped: from };
}
