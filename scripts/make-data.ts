// Writes the shipped data under data/ (deterministic: same seed, same bytes). Run with
//   npx tsx scripts/make-data.ts [outDir]
//
// The story the data tells, at toy scale, is R1-Zero's. The pretraining corpus teaches sums of two
// numbers 0-19 in many phrasings, and holds the R1-Zero prompt template verbatim (so the tokenizer
// learns its words and the prompt stays short). After that template the corpus Assistant answers in
// the full <think> ... </think> <answer> ... </answer> form only now and then; more often it breaks
// the tags, or answers bare and chats on to other sums (whose numbers the accuracy reward then reads
// as its answer). So the base model knows its sums and can sample the format, but rarely does both:
// accuracy + format rewards start low, and GRPO has to find the form.
//
// The shares follow the later brief for this data (issues 3 and 6): 5-10% of the corpus in the
// template, many replies with tags, few (TEMPLATE_STYLE.full) in the full, correct form, so the base
// model starts GRPO with a low reward.
// Everything is checked by tests/data-shipped.test.ts; change the shares there and here together.
import { mkdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonl } from '../src/data/io.ts';
import { codeProblems } from './code-problems.ts';
import { applyTemplate } from '../src/data/chat.ts';
import { Rng } from '../src/engine/rng.ts';
import {
  distinctProblems,
  expression,
  factKey,
  makeProblem,
  placeValueSteps,
  question,
  taskRow,
  workedSteps,
  type Problem,
  type ProblemOptions,
} from '../src/data/tasks.ts';

export const SEED = 20250122;
/** Operands of every sum in the data: the prompts, the held-out set and the corpus. */
export const OPERANDS: ProblemOptions = { min: 0, max: 19 };
const COUNTS = { train: 190, test: 20, corpus: 14000, coldStart: 300, chat: 300, preferences: 300 };
/** Shares of corpus documents; the rest are arithmetic statements. */
const SHARE = { template: 0.09, chat: 0.08, prose: 0.13 };
/** How the Assistant answers after the R1-Zero template in the corpus: the full form rarely. */
const TEMPLATE_STYLE = { full: 0.06, malformed: 0.35 }; // the rest: a bare answer, chatting on

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];

type Exclude = ReadonlySet<string>;

/** The sums a problem's worked solutions state on the way ("23 + 40 = 63, then 63 + 5 = 68."). */
function stepFacts(p: Problem): string[] {
  const text = `${workedSteps(p)} ${placeValueSteps(p)}`;
  return [...text.matchAll(/(\d+) \+ (\d+) =/g)].map((m) => factKey({ kind: 'sum', a: +m[1], b: +m[2], result: +m[1] + +m[2] }));
}

/** A sum for the corpus and the SFT sets, some of them small. Neither it nor a step of its worked
 * solutions is a held-out fact (in either order), so no training text states one. */
function sum(rng: Rng, exclude: Exclude): Problem {
  for (;;) {
    const p = makeProblem(rng, rng.next() < 0.1 ? { min: 0, max: 9 } : OPERANDS);
    if (!exclude.has(factKey(p)) && !stepFacts(p).some((k) => exclude.has(k))) return p;
  }
}

// ---- arithmetic in many phrasings ---------------------------------------------------------------

const SUM_PHRASES: ((p: Problem) => string)[] = [
  (p) => `${expression(p)} = ${p.result}`,
  (p) => `${expression(p)} = ${p.result}.`,
  (p) => `${p.a} plus ${p.b} is ${p.result}.`,
  (p) => `${p.a} plus ${p.b} equals ${p.result}.`,
  (p) => `${p.a} and ${p.b} make ${p.result}.`,
  (p) => `What is ${p.a} plus ${p.b}? ${p.result}.`,
  (p) => `${question(p)} ${p.result}.`,
  (p) => `${question(p)} It is ${p.result}.`,
  (p) => `${question(p)} The answer is ${p.result}.`,
  (p) => `Q: ${question(p)} A: ${p.result}`,
  (p) => `The sum of ${p.a} and ${p.b} is ${p.result}.`,
  (p) => `Add ${p.b} to ${p.a} and you get ${p.result}.`,
  (p) => `If you add ${p.a} and ${p.b}, you get ${p.result}.`,
  (p) => `${expression(p)}: ${workedSteps(p)}`,
  (p) => `${expression(p)}: ${placeValueSteps(p)}`,
  (p) => `To find ${expression(p)}, ${workedSteps(p)} So ${expression(p)} = ${p.result}.`,
  (p) => `${question(p)} ${placeValueSteps(p)} So it is ${p.result}.`,
  (p) => `${p.a} 加 ${p.b} 等于 ${p.result}。`,
  (p) => `${p.a} 和 ${p.b} 的和是 ${p.result}。`,
  (p) => `${expression(p)} 等于多少？答案是 ${p.result}。`,
];

const statement = (rng: Rng, p: Problem): string => pick(rng, SUM_PHRASES)(p);

// ---- simple English and Chinese, aligned so the chat data can translate --------------------------

type Pair = readonly [string, string];
const NAMES: Pair[] = [
  ['Tom', '汤姆'],
  ['Anna', '安娜'],
  ['Li Ming', '李明'],
  ['Mary', '玛丽'],
  ['Jack', '杰克'],
  ['Wang Fang', '王芳'],
];
const SUBJECTS: Pair[] = [
  ['The cat', '小猫'],
  ['A dog', '一只狗'],
  ['My friend', '我的朋友'],
  ['The teacher', '老师'],
  ['The little bird', '小鸟'],
  ['My mother', '我的妈妈'],
  ['My father', '我的爸爸'],
  ['The boy', '男孩'],
  ['The girl', '女孩'],
  ...NAMES,
];
const VERBS: Pair[] = [
  ['likes', '喜欢'],
  ['sees', '看见'],
  ['has', '有'],
  ['draws', '画'],
  ['wants', '想要'],
  ['finds', '找到'],
  ['buys', '买'],
];
const OBJECTS: Pair[] = [
  ['a red ball', '一个红色的球'],
  ['an old book', '一本旧书'],
  ['a small house', '一座小房子'],
  ['a big apple', '一个大苹果'],
  ['the blue sky', '蓝色的天空'],
  ['a long river', '一条长河'],
  ['green tea', '绿茶'],
  ['a white flower', '一朵白花'],
  ['a new pen', '一支新笔'],
];
const TIMES: Pair[] = [
  ['', ''],
  [' today', '今天'],
  [' in the morning', '早上'],
  [' at school', '在学校'],
  [' every day', '每天'],
];
const PLACES: Pair[] = [
  ['park', '公园'],
  ['school', '学校'],
  ['shop', '商店'],
  ['library', '图书馆'],
  ['garden', '花园'],
  ['kitchen', '厨房'],
];
/** Nouns with their Chinese measure words (这本书, 三支笔). */
type Counted = readonly [string, string, string];
const THINGS: Counted[] = [
  ['book', '书', '本'],
  ['room', '房间', '个'],
  ['river', '河', '条'],
  ['tree', '树', '棵'],
  ['cake', '蛋糕', '个'],
  ['road', '路', '条'],
];
const ADJECTIVES: Pair[] = [
  ['big', '大'],
  ['small', '小'],
  ['long', '长'],
  ['old', '旧'],
  ['new', '新'],
  ['beautiful', '漂亮'],
  ['clean', '干净'],
];
const WEATHER: Pair[] = [
  ['sunny', '是晴天'],
  ['cold', '很冷'],
  ['hot', '很热'],
  ['rainy', '下雨'],
  ['windy', '刮风'],
];
const FOODS: Pair[] = [
  ['rice', '米饭'],
  ['noodles', '面条'],
  ['apples', '苹果'],
  ['fish', '鱼'],
  ['bread', '面包'],
  ['milk', '牛奶'],
];
const SKILLS: Pair[] = [
  ['swim', '游泳'],
  ['sing', '唱歌'],
  ['read', '读书'],
  ['cook', '做饭'],
  ['run fast', '跑得很快'],
  ['count to 100', '数到一百'],
];
const ITEMS: Counted[] = [
  ['apples', '苹果', '个'],
  ['books', '书', '本'],
  ['pens', '笔', '支'],
  ['stamps', '邮票', '张'],
  ['cards', '卡片', '张'],
  ['balls', '球', '个'],
];

type Frame = (rng: Rng, exclude: Exclude) => Pair;
/** Sentence frames, each in both languages; the filled slots give a few thousand sentences. */
const FRAMES: Frame[] = [
  (r) => {
    const [s, v, o, t] = [pick(r, SUBJECTS), pick(r, VERBS), pick(r, OBJECTS), pick(r, TIMES)];
    return [`${s[0]} ${v[0]} ${o[0]}${t[0]}.`, `${s[1]}${t[1]}${v[1]}${o[1]}。`];
  },
  (r) => {
    const [s, p] = [pick(r, SUBJECTS), pick(r, PLACES)];
    return [`${s[0]} is in the ${p[0]}.`, `${s[1]}在${p[1]}。`];
  },
  (r) => {
    const [s, p, t] = [pick(r, SUBJECTS), pick(r, PLACES), pick(r, TIMES.slice(1, 3))];
    return [`${s[0]} goes to the ${p[0]}${t[0]}.`, `${s[1]}${t[1]}去${p[1]}。`];
  },
  (r) => {
    const [t, a] = [pick(r, THINGS), pick(r, ADJECTIVES)];
    return [`The ${t[0]} is very ${a[0]}.`, `这${t[2]}${t[1]}很${a[1]}。`];
  },
  (r) => {
    const w = pick(r, WEATHER);
    return [`It is ${w[0]} today.`, `今天${w[1]}。`];
  },
  (r) => {
    const f = pick(r, FOODS);
    return [`I like ${f[0]}.`, `我喜欢${f[1]}。`];
  },
  (r) => {
    const [s, f] = [pick(r, SUBJECTS), pick(r, FOODS)];
    return [`${s[0]} eats ${f[0]} for lunch.`, `${s[1]}午饭吃${f[1]}。`];
  },
  (r) => {
    const [s, k] = [pick(r, SUBJECTS), pick(r, SKILLS)];
    return [`${s[0]} can ${k[0]}.`, `${s[1]}会${k[1]}。`];
  },
  (r) => {
    const n = pick(r, NAMES);
    return [`My name is ${n[0]}.`, `我叫${n[1]}。`];
  },
  (r) => {
    const [t, p] = [pick(r, THINGS), pick(r, PLACES)];
    return [`Where is the ${t[0]}? It is in the ${p[0]}.`, `${t[1]}在哪里？在${p[1]}里。`];
  },
  (r) => {
    const [n, i, k] = [pick(r, NAMES), pick(r, ITEMS), 2 + r.int(98)];
    return [`${n[0]} has ${k} ${i[0]}.`, `${n[1]}有${k}${i[2]}${i[1]}。`];
  },
  (r) => {
    const [i, k] = [pick(r, ITEMS), 2 + r.int(98)];
    return [`There are ${k} ${i[0]} on the table.`, `桌子上有${k}${i[2]}${i[1]}。`];
  },
  // A word problem: the sums of the corpus in a story.
  (r, exclude) => {
    const [n, i, { a, b, result }] = [pick(r, NAMES), pick(r, ITEMS), sum(r, exclude)];
    return [
      `${n[0]} has ${a} ${i[0]} and gets ${b} more. Now ${n[0]} has ${result} ${i[0]}.`,
      `${n[1]}有${a}${i[2]}${i[1]}，又得到${b}${i[2]}，现在有${result}${i[2]}。`,
    ];
  },
];

export const sentencePair = (rng: Rng, exclude: Exclude): Pair => pick(rng, FRAMES)(rng, exclude);

export function proseDoc(rng: Rng, exclude: Exclude): string {
  const zh = rng.next() < 0.4;
  return Array.from({ length: 1 + rng.int(3) }, () => sentencePair(rng, exclude)[zh ? 1 : 0]).join(zh ? '' : ' ');
}

// ---- dialogues -------------------------------------------------------------------------------------

/** An answer without tags: the number, a sentence, or worked steps. */
const bareAnswer = (rng: Rng, p: Problem): string =>
  pick(rng, [`${p.result}.`, `It is ${p.result}.`, `${expression(p)} = ${p.result}.`, workedSteps(p), `The answer is ${p.result}.`]);

/** A short chain of thought for the think block: with the tags, within the recipes' 48 new tokens
 * (placeValueSteps can take 49). */
const thought = (rng: Rng, p: Problem): string => pick(rng, [workedSteps(p), workedSteps(p), `${expression(p)} = ${p.result}.`]);

/** One to three more turns, " User: What is 5 + 6?. Assistant: 11." (the template's punctuation). */
export function moreTurns(rng: Rng, exclude: Exclude): string {
  let out = '';
  for (let i = 1 + rng.int(3); i > 0; i--) {
    const q = sum(rng, exclude);
    out += ` User: ${question(q)}. Assistant: ${bareAnswer(rng, q)}`;
  }
  return out;
}

/** Plain chat outside the template: "User: What is 3 + 4? Assistant: 7. User: ...". */
function chatDoc(rng: Rng, exclude: Exclude): string {
  let out = '';
  for (let i = 2 + rng.int(3); i > 0; i--) {
    const p = sum(rng, exclude);
    out += `${out ? ' ' : ''}User: ${question(p)} Assistant: ${bareAnswer(rng, p)}`;
  }
  return out;
}

/** The required form; the leading space follows "Assistant:". */
const fullForm = (rng: Rng, p: Problem): string => ` <think> ${thought(rng, p)} </think> <answer> ${p.result} </answer>`;

/** The tags, broken in one of several ways. */
function malformed(rng: Rng, p: Problem, exclude: Exclude): string {
  const t = thought(rng, p),
    r = p.result;
  return pick(rng, [
    () => ` <think> ${t} </think> ${r}.${moreTurns(rng, exclude)}`, // no answer block
    () => ` <think> ${t} </think> The answer is ${r}.${moreTurns(rng, exclude)}`,
    () => ` <think> ${t} <answer> ${r} </answer>`, // think never closed
    () => ` ${t} </think> <answer> ${r} </answer>`, // think never opened
    () => ` <answer> ${r} </answer>`, // no thinking
    () => ` <think> ${t} </think> <answer> ${r}.${moreTurns(rng, exclude)}`, // answer never closed
    () => ` <answer> ${r} </answer> <think> ${t} </think>`, // wrong order
  ])();
}

/** The R1-Zero template with the Assistant's reply: rarely the full form (see TEMPLATE_STYLE). */
function templateDoc(rng: Rng, exclude: Exclude): string {
  const p = sum(rng, exclude);
  const u = rng.next();
  const reply =
    u < TEMPLATE_STYLE.full
      ? fullForm(rng, p)
      : u < TEMPLATE_STYLE.full + TEMPLATE_STYLE.malformed
        ? malformed(rng, p, exclude)
        : ` ${bareAnswer(rng, p)}${moreTurns(rng, exclude)}`;
  return applyTemplate('r1-zero', question(p)) + reply;
}

/** The pretraining corpus. `extra`: another kind of document taking `share` of the rows from the
 * arithmetic statements (the tools corpus, scripts/tools-data.ts); without it the draws, and so the
 * bytes of data/corpus.jsonl, are what they always were. */
export function corpus(
  rng: Rng,
  exclude: Exclude,
  extra: { share: number; doc: () => string } | null = null,
  rows = COUNTS.corpus,
): { text: string }[] {
  return Array.from({ length: rows }, () => {
    let u = rng.next();
    if (extra && (u -= extra.share) < 0) return { text: extra.doc() };
    if ((u -= SHARE.template) < 0) return { text: templateDoc(rng, exclude) };
    if ((u -= SHARE.chat) < 0) return { text: chatDoc(rng, exclude) };
    if ((u -= SHARE.prose) < 0) return { text: proseDoc(rng, exclude) };
    return { text: Array.from({ length: 1 + rng.int(4) }, () => statement(rng, sum(rng, exclude))).join(' ') };
  });
}

// ---- SFT, chat and preference sets ---------------------------------------------------------------

/** R1's cold start: short, readable reasoning in whole sentences, then the answer; it fits the
 * recipes' 48 new tokens, so the GRPO that follows sees whole answers. */
function coldStart(rng: Rng, exclude: Exclude): { prompt: string; completion: string }[] {
  return Array.from({ length: COUNTS.coldStart }, () => {
    const p = sum(rng, exclude);
    const reasoning = pick(rng, [
      `${workedSteps(p)} So it is ${p.result}.`,
      `Tens first: ${workedSteps(p)}`,
      `${expression(p)}: ${workedSteps(p)}`,
    ]);
    return { prompt: question(p), completion: ` <think> ${reasoning} </think> <answer> ${p.result} </answer>` };
  });
}

type Message = { role: string; content: string };
const FACTS: Pair[] = [
  ['What color is the sky?', 'The sky is blue.'],
  ['How many days are in a week?', 'There are 7 days in a week.'],
  ['How many legs does a cat have?', 'A cat has 4 legs.'],
  ['What is the capital of China?', 'The capital of China is Beijing.'],
  ['What is the capital of France?', 'The capital of France is Paris.'],
  ['What do bees make?', 'Bees make honey.'],
  ['Is the sun a star?', 'Yes, the sun is a star.'],
  ['What do cows drink?', 'Cows drink water.'],
  ['How many hours are in a day?', 'There are 24 hours in a day.'],
  ['What is ice made of?', 'Ice is frozen water.'],
  ['中国的首都是哪里？', '中国的首都是北京。'],
  ['一年有几个月？', '一年有十二个月。'],
  ['天空是什么颜色的？', '天空是蓝色的。'],
  ['一个星期有几天？', '一个星期有七天。'],
  ['熊猫喜欢吃什么？', '熊猫喜欢吃竹子。'],
];
const GREETINGS: Pair[] = [
  ['Hello!', 'Hello! How can I help you today?'],
  ['Hi, who are you?', 'I am a small assistant. I can do sums and translate short sentences.'],
  ['Thank you.', 'You are welcome.'],
  ['Good morning.', 'Good morning! What would you like to do?'],
  ['Goodbye!', 'Goodbye! Have a nice day.'],
  ['How are you?', 'I am fine, thank you. How can I help?'],
  ['你好！', '你好！有什么可以帮你的吗？'],
  ['谢谢！', '不客气。'],
  ['再见！', '再见！祝你今天愉快。'],
];

/** One user/assistant exchange of a non-reasoning kind. */
export function exchange(rng: Rng, exclude: Exclude): Pair {
  return pick(rng, [
    () => {
      const [en, zh] = sentencePair(rng, exclude);
      return [`Translate into Chinese: ${en}`, zh] as const;
    },
    () => {
      const [en, zh] = sentencePair(rng, exclude);
      return [`把这句话翻译成英文：${zh}`, en] as const;
    },
    () => pick(rng, GREETINGS),
    () => pick(rng, FACTS),
    () => {
      const p = sum(rng, exclude);
      return [`Please tell me ${p.a} plus ${p.b}.`, `${p.a} plus ${p.b} is ${p.result}.`] as const;
    },
    () => {
      const [en] = sentencePair(rng, exclude);
      return [`Repeat after me: ${en}`, en] as const;
    },
  ])();
}

/** Chat rows: one to three exchanges, some with a system message. */
function chatRows(rng: Rng, exclude: Exclude): { messages: Message[] }[] {
  return Array.from({ length: COUNTS.chat }, () => {
    const messages: Message[] = rng.next() < 0.2 ? [{ role: 'system', content: 'You are a helpful assistant.' }] : [];
    for (let i = rng.next() < 0.3 ? 2 + rng.int(2) : 1; i > 0; i--) {
      const [user, assistant] = exchange(rng, exclude);
      messages.push({ role: 'user', content: user }, { role: 'assistant', content: assistant });
    }
    return { messages };
  });
}

/** Chosen: the right answer in the required form. Rejected: half the pairs a wrong answer in the
 * same form, half the right answer with the form broken. */
function preferences(rng: Rng, exclude: Exclude): { prompt: string; chosen: string; rejected: string }[] {
  return Array.from({ length: COUNTS.preferences }, () => {
    const p = sum(rng, exclude);
    const wrong = Math.max(0, p.result + pick(rng, [-10, -2, -1, 1, 2, 10]));
    const rejected =
      rng.next() < 0.5
        ? ` <think> ${expression(p)} = ${wrong}. </think> <answer> ${wrong} </answer>`
        : pick(rng, [
            () => ` ${p.result}.${moreTurns(rng, exclude)}`,
            () => ` <answer> ${p.result} </answer>`,
            () => ` <think> ${workedSteps(p)} </think> <answer> ${p.result}`,
            () => ` <think> ${workedSteps(p)} <answer> ${p.result} </answer>`,
          ])();
    return { prompt: question(p), chosen: fullForm(rng, p), rejected };
  });
}

// ---- main ------------------------------------------------------------------------------------------

/** Every shipped file as [name, rows], from one seed. */
export function makeData(seed = SEED): [string, unknown[]][] {
  // Held-out facts first, so that nothing else (in either operand order) contains them.
  const test = distinctProblems(seed + 1, COUNTS.test, OPERANDS, new Set(), factKey);
  const held = new Set(test.map(factKey));
  const train = distinctProblems(seed + 2, COUNTS.train, OPERANDS, held, factKey);
  const rng = new Rng(seed);
  return [
    ['sums.jsonl', train.map(taskRow)],
    ['sums-test.jsonl', test.map(taskRow)],
    ['corpus.jsonl', corpus(rng, held)],
    ['cold-start.jsonl', coldStart(rng, held)],
    ['chat.jsonl', chatRows(rng, held)],
    ['preferences.jsonl', preferences(rng, held)],
    ['code-problems.jsonl', codeProblems()],
  ];
}

function main(outDir: string): void {
  mkdirSync(outDir, { recursive: true });
  for (const [name, rows] of makeData()) {
    writeJsonl(join(outDir, name), rows);
    process.stdout.write(`${name}: ${rows.length} rows\n`);
  }
}

// Run as a script (not when a test imports makeData).
if (process.argv[1] && import.meta.filename === realpathSync(process.argv[1])) {
  main(process.argv[2] ?? join(import.meta.dirname, '..', 'data'));
}
