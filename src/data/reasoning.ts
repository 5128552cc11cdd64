// Seeded generators of the reasoning tasks the R1 recipes train and test on: multi-step arithmetic
// word problems and Countdown puzzles (reach a target with given numbers, each used once), in
// English and Chinese, each with a difficulty knob, a reference answer and a worked solution.
//
// Worked solutions are written step by step ("5 + 7 = 12. 12 - 3 = 9.") because a small model can
// only do arithmetic one fact at a time; the steps are what its chain of thought has to learn.
import { Rng } from '../engine/rng.ts';

export type Lang = 'en' | 'zh';
export type ReasoningTask = 'word' | 'countdown';

/** One step of a word problem or a Countdown solution: `value op amount`. */
export type Step = { op: '+' | '-'; amount: number };

export type ReasoningProblem = {
  task: ReasoningTask;
  language: Lang;
  /** Word problems: the number of operations (1-3). Countdown: how many numbers are given (2-4). */
  difficulty: number;
  /** The question, in `language`. */
  prompt: string;
  /** The reference answer: a number (word) or one expression that reaches the target (countdown). */
  answer: string;
  /** Worked steps in `language`, without the final summary. */
  reasoning: string;
  /** One sentence stating the result, in `language`, in the corpus's words ("The answer is 9."): a
   * phrase the base model never saw ("So the answer is") came out garbled after SFT ("S� the answer"). */
  summary: string;
  /** What makes two problems the same whatever their language or story: train and test share none. */
  key: string;
  /** Word problems only: the starting number and the steps (to restate the reasoning in another language). */
  start?: number;
  steps?: Step[];
  /** Countdown only: the numbers to use and the target. */
  numbers?: number[];
  target?: number;
};

export type ReasoningOptions = {
  /** Share of word problems; the rest are Countdown. */
  wordShare?: number;
  /** Share of Chinese problems. */
  zhShare?: number;
  /** Word-problem difficulty: the number of operations, drawn from this list. */
  wordSteps?: readonly number[];
  /** Countdown difficulty: how many numbers, drawn from this list. */
  countdownNumbers?: readonly number[];
};

const DEFAULTS: Required<ReasoningOptions> = { wordShare: 0.6, zhShare: 0.5, wordSteps: [1, 2, 2, 3, 3], countdownNumbers: [2, 3, 3] };
/** Running values of a word problem stay in [0, MAX_VALUE]: the facts the corpus teaches. */
export const MAX_VALUE = 30;

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];

type Pair = readonly [string, string];
/** Names in both languages. */
const NAMES: Pair[] = [
  ['Tom', '汤姆'],
  ['Anna', '安娜'],
  ['Li Ming', '李明'],
  ['Mary', '玛丽'],
  ['Jack', '杰克'],
  ['Wang Fang', '王芳'],
  ['Sam', '山姆'],
  ['Lily', '莉莉'],
];
/** Plural noun, Chinese noun and its measure word. */
const ITEMS: (readonly [string, string, string])[] = [
  ['apples', '苹果', '个'],
  ['books', '书', '本'],
  ['pens', '笔', '支'],
  ['stamps', '邮票', '张'],
  ['cards', '卡片', '张'],
  ['balls', '球', '个'],
  ['sweets', '糖', '颗'],
  ['flowers', '花', '朵'],
  ['fish', '鱼', '条'],
  ['coins', '硬币', '枚'],
];
/** Verbs that add and that take away: English phrase before the amount, Chinese verb. */
const MORE: Pair[] = [
  ['buys', '又买了'],
  ['gets', '又得到'],
  ['finds', '又找到'],
];
const LESS: Pair[] = [
  ['gives away', '送出了'],
  ['loses', '丢了'],
  ['uses', '用了'],
];
/** Short step words for the worked solution: "Buy 7", "买了7个". */
const STEP_WORD = { '+': ['Add', '加上'], '-': ['Take away', '减去'] } as const;

/** Values of a chain of steps from `start`. */
function runningValues(start: number, steps: readonly Step[]): number[] {
  const out = [start];
  for (const s of steps) out.push(out.at(-1)! + (s.op === '+' ? s.amount : -s.amount));
  return out;
}

/** "5 + 7 = 12. 12 - 3 = 9." or "5 + 7 = 12，12 - 3 = 9。" */
export function stepText(start: number, steps: readonly Step[], lang: Lang): string {
  const v = runningValues(start, steps);
  const facts = steps.map((s, i) => `${v[i]} ${s.op} ${s.amount} = ${v[i + 1]}`);
  return lang === 'en' ? facts.join('. ') + '.' : facts.join('，') + '。';
}

/** A word problem with `n` operations; running values stay within [0, MAX_VALUE]. */
export function wordProblem(rng: Rng, n: number, lang: Lang): ReasoningProblem {
  const start = 2 + rng.int(14);
  const steps: Step[] = [];
  let v = start;
  for (let i = 0; i < n; i++) {
    const canAdd = v + 1 <= MAX_VALUE,
      canTake = v >= 1;
    const op = canAdd && (!canTake || rng.next() < 0.5) ? '+' : '-';
    const room = op === '+' ? MAX_VALUE - v : v;
    const amount = 1 + rng.int(Math.min(9, room));
    steps.push({ op, amount });
    v += op === '+' ? amount : -amount;
  }
  const [name, item] = [pick(rng, NAMES), pick(rng, ITEMS)];
  const verbs = steps.map((s): Pair => {
    const [en, zh] = pick(rng, s.op === '+' ? MORE : LESS);
    return [`${en} ${s.amount}${s.op === '+' ? ' more' : ''}`, `${zh}${s.amount}${item[2]}`];
  });
  const prompt =
    lang === 'en'
      ? `${name[0]} has ${start} ${item[0]}. ${verbs.map((p, i) => `${i ? 'Then ' : ''}${name[0]} ${p[0]}.`).join(' ')} How many ${item[0]} does ${name[0]} have now?`
      : `${name[1]}有${start}${item[2]}${item[1]}。${verbs.map((p, i) => `${i ? '然后' : ''}${name[1]}${p[1]}。`).join('')}${name[1]}现在有几${item[2]}${item[1]}？`;
  const reasoning = wordReasoning(start, steps, lang);
  const summary = lang === 'en' ? `The answer is ${v}.` : `答案是${v}。`;
  return {
    task: 'word',
    language: lang,
    difficulty: n,
    prompt,
    answer: String(v),
    reasoning,
    summary,
    key: `word:${start}${steps.map((s) => s.op + s.amount).join('')}`,
    start,
    steps,
  };
}

/** "Start with 5. Add 7: 5 + 7 = 12. Take away 3: 12 - 3 = 9." (or in Chinese). */
export function wordReasoning(start: number, steps: readonly Step[], lang: Lang): string {
  const v = runningValues(start, steps);
  const parts = steps.map((s, i) => {
    const fact = `${v[i]} ${s.op} ${s.amount} = ${v[i + 1]}`;
    return lang === 'en' ? `${STEP_WORD[s.op][0]} ${s.amount}: ${fact}.` : `${STEP_WORD[s.op][1]}${s.amount}：${fact}。`;
  });
  return lang === 'en' ? `Start with ${start}. ${parts.join(' ')}` : `开始有${start}。${parts.join('')}`;
}

/** The expression of a chain: "7 + 5 - 3". */
export const chainExpression = (start: number, steps: readonly Step[]): string =>
  [String(start), ...steps.map((s) => `${s.op} ${s.amount}`)].join(' ');

/** A Countdown puzzle with `n` numbers from 1-9 (each used once, with + and -), target 1-30. */
export function countdownProblem(rng: Rng, n: number, lang: Lang): ReasoningProblem {
  for (;;) {
    const numbers = Array.from({ length: n }, () => 1 + rng.int(9));
    const steps: Step[] = numbers.slice(1).map((amount) => ({ op: rng.next() < 0.6 ? '+' : '-', amount }));
    const values = runningValues(numbers[0], steps);
    const target = values.at(-1)!;
    if (values.some((x) => x < 0 || x > MAX_VALUE) || target < 1) continue;
    const shown = [...numbers].sort((a, b) => a - b);
    const list = lang === 'en' ? shown.join(', ') : shown.join('、');
    const prompt =
      lang === 'en'
        ? `Using the numbers ${list}, make ${target}. Use each number once, with + and -.`
        : `用数字${list}凑出${target}，每个数字用一次，可以用加号和减号。`;
    const wrong = wrongTry(rng, numbers, target);
    const tries = [...(wrong ? [wrong] : []), { start: numbers[0], steps }];
    const reasoning = tries
      .map((t, i) => {
        const got = runningValues(t.start, t.steps).at(-1)!;
        const facts = stepText(t.start, t.steps, lang).slice(0, -1);
        if (lang === 'en') return `Try ${facts}. ${i < tries.length - 1 ? (got > target ? 'Too big.' : 'Too small.') : 'That is it.'}`;
        return `试试${facts}，${i < tries.length - 1 ? (got > target ? '太大了。' : '太小了。') : '对了。'}`;
      })
      .join(' ');
    const answer = chainExpression(numbers[0], steps);
    const summary = lang === 'en' ? `The answer is ${answer}.` : `答案是${answer}。`;
    return {
      task: 'countdown',
      language: lang,
      difficulty: n,
      prompt,
      answer,
      reasoning,
      summary,
      key: `countdown:${shown.join(',')}=${target}`,
      numbers: shown,
      target,
    };
  }
}

/** Half the time, a first try with the same numbers that misses the target (the search a solver shows). */
function wrongTry(rng: Rng, numbers: number[], target: number): { start: number; steps: Step[] } | null {
  if (rng.next() < 0.5) return null;
  for (let i = 0; i < 10; i++) {
    const order = [...numbers].sort(() => rng.next() - 0.5);
    const steps: Step[] = order.slice(1).map((amount) => ({ op: rng.next() < 0.6 ? '+' : '-', amount }));
    const values = runningValues(order[0], steps);
    if (values.every((x) => x >= 0 && x <= MAX_VALUE) && values.at(-1) !== target) return { start: order[0], steps };
  }
  return null;
}

/** A random problem of either task and language (see ReasoningOptions). */
export function reasoningProblem(rng: Rng, o: ReasoningOptions = {}): ReasoningProblem {
  const opt = { ...DEFAULTS, ...o };
  const word = rng.next() < opt.wordShare;
  const lang: Lang = rng.next() < opt.zhShare ? 'zh' : 'en';
  return word ? wordProblem(rng, pick(rng, opt.wordSteps), lang) : countdownProblem(rng, pick(rng, opt.countdownNumbers), lang);
}

/** `n` problems with distinct keys, none of whose keys is in `exclude`. */
export function distinctReasoningProblems(
  seed: number,
  n: number,
  o: ReasoningOptions = {},
  exclude: ReadonlySet<string> = new Set(),
): ReasoningProblem[] {
  const rng = new Rng(seed);
  const seen = new Set(exclude);
  const out: ReasoningProblem[] = [];
  for (let tries = 0; out.length < n && tries < n * 200; tries++) {
    const p = reasoningProblem(rng, o);
    if (seen.has(p.key)) continue;
    seen.add(p.key);
    out.push(p);
  }
  if (out.length < n) throw new Error(`only ${out.length} distinct problems for ${n} requested (raise the difficulty range)`);
  return out;
}

/** A problem drawn until its key is not in `exclude` (corpus and SFT text, kept off the test set). */
export function freshProblem(rng: Rng, exclude: ReadonlySet<string>, o: ReasoningOptions = {}): ReasoningProblem {
  for (;;) {
    const p = reasoningProblem(rng, o);
    if (!exclude.has(p.key)) return p;
  }
}

/** The row GRPO and eval read: prompt, reference answer, task, language, difficulty (+ numbers, target). */
export function reasoningRow(p: ReasoningProblem): Record<string, unknown> {
  return {
    prompt: p.prompt,
    answer: p.answer,
    task: p.task,
    language: p.language,
    difficulty: p.difficulty,
    ...(p.numbers ? { numbers: p.numbers, target: p.target } : {}),
  };
}
