// Writes data/r1/: the reasoning tasks, pretraining corpus, cold-start and general (non-reasoning)
// sets of the R1-Zero and R1 recipes (deterministic: same seed, same bytes). Run with
//   npx tsx scripts/r1-data.ts [outDir]        (npm run data writes every shipped file)
//
// The story at toy scale. The corpus gives a base model the two languages, the arithmetic facts
// (x + k and x - k up to 30), and worked word problems and Countdown puzzles as "Question ... Solution
// ... The answer is 9." - in English and Chinese, and in a quarter of the worked solutions the
// language switches step by step (bilingual web text does this), so language mixing is there to be
// measured. The R1-Zero template appears in 10% of the documents, but the Assistant answers in the full
// <think> ... </think> <answer> ... </answer> form in only a few of those (TEMPLATE_STYLE.full): the
// base model has not got the habit, RL has to find it. (A base that has never seen the tags never
// samples them, and a 1M-parameter model cannot follow the template's instruction the way
// DeepSeek-V3-Base does, so RL would have nothing to reinforce.)
// Train and test problems share no key (src/data/reasoning.ts: the numbers and operations, whatever
// the language or story), and no corpus, cold-start or general row holds a test problem.
import { mkdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonl } from '../src/data/io.ts';
import { applyTemplate } from '../src/data/chat.ts';
import { Rng } from '../src/engine/rng.ts';
import {
  MAX_VALUE,
  distinctReasoningProblems,
  freshProblem,
  reasoningRow,
  wordReasoning,
  type Lang,
  type ReasoningProblem,
} from '../src/data/reasoning.ts';
import { exchange, proseDoc, sentencePair } from './make-data.ts';

const SEED = 20250120;
const COUNTS = { train: 2000, test: 200, corpus: 16000, coldStart: 400, general: 400, heldOut: 500 };
/** Shares of corpus documents; the rest are arithmetic facts. */
const SHARE = { word: 0.24, countdown: 0.14, template: 0.1, chat: 0.07, prose: 0.12 };
/** Share of worked solutions whose steps switch language. */
const MIXED = 0.25;
/** How the Assistant answers after the R1-Zero template in the corpus: the full form rarely. */
const TEMPLATE_STYLE = { full: 0.05, malformed: 0.3 }; // the rest: a worked or bare answer without tags

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];
const other = (l: Lang): Lang => (l === 'en' ? 'zh' : 'en');
type Keys = ReadonlySet<string>;

// ---- arithmetic facts -----------------------------------------------------------------------------

type Phrase = (a: number, op: '+' | '-', b: number, r: number) => string;
const EN_FACTS: Phrase[] = [
  (a, op, b, r) => `${a} ${op} ${b} = ${r}.`,
  (a, op, b, r) => `${a} ${op === '+' ? 'plus' : 'minus'} ${b} is ${r}.`,
  (a, op, b, r) => `${a} ${op === '+' ? 'plus' : 'minus'} ${b} equals ${r}.`,
  (a, op, b, r) => `What is ${a} ${op} ${b}? It is ${r}.`,
];
const ZH_FACTS: Phrase[] = [
  (a, op, b, r) => `${a} ${op} ${b} 等于 ${r}。`,
  (a, op, b, r) => `${a}${op === '+' ? '加' : '减'}${b}等于${r}。`,
  (a, op, b, r) => `${a} ${op} ${b} 等于多少？答案是 ${r}。`,
];

/** One fact x + k or x - k with every number in [0, MAX_VALUE] and k <= 9 (the word-problem steps),
 * or a sum of two numbers up to 19. */
function fact(rng: Rng, lang: Lang): string {
  const op = rng.next() < 0.55 ? '+' : '-';
  let a: number, b: number;
  if (rng.next() < 0.25) [a, b] = [rng.int(20), rng.int(20)];
  else [a, b] = [rng.int(MAX_VALUE + 1), 1 + rng.int(9)];
  if (op === '+' && a + b > MAX_VALUE + 9) a = MAX_VALUE - b;
  if (op === '-' && b > a) [a, b] = [b, a];
  return pick(rng, lang === 'en' ? EN_FACTS : ZH_FACTS)(a, op, b, op === '+' ? a + b : a - b);
}

// ---- worked problems ------------------------------------------------------------------------------

/** The worked reasoning, in the problem's language, or (mixed) switching language step by step. */
function reasoningText(rng: Rng, p: ReasoningProblem, mixed: boolean): string {
  if (!mixed) return p.reasoning;
  // Regenerate the same problem's steps in both languages and interleave them sentence by sentence.
  const other_ = solutionIn(p, other(p.language));
  const a = splitSentences(p.reasoning),
    b = splitSentences(other_);
  if (a.length !== b.length) return rng.next() < 0.5 ? p.reasoning : other_;
  return a
    .map((s, i) => (rng.next() < 0.5 ? s : b[i]))
    .join(' ')
    .replace(/ (?=[\u4e00-\u9fff])/g, '');
}

/** Countdown's search words in both languages. */
const TRY_WORDS: [string, string][] = [
  ['Try ', '试试'],
  ['Too big.', '太大了。'],
  ['Too small.', '太小了。'],
  ['That is it.', '对了。'],
];

/** The same worked steps in another language: word problems are rebuilt from their steps; in a
 * Countdown search only the words change (the facts keep their punctuation). */
function solutionIn(p: ReasoningProblem, lang: Lang): string {
  if (p.task === 'word') return wordReasoning(p.start!, p.steps!, lang);
  return TRY_WORDS.reduce(
    (t, [en, zh]) =>
      t
        .split(en)
        .join(zh)
        .split(zh)
        .join(lang === 'zh' ? zh : en),
    p.reasoning,
  );
}

/** Sentences ending in . or 。 (or ，). */
const splitSentences = (t: string): string[] => t.match(/[^.。]+[.。]/g)?.map((s) => s.trim()) ?? [t];

const answerPhrase = (p: ReasoningProblem): string => (p.language === 'en' ? `The answer is ${p.answer}.` : `答案是${p.answer}。`);

/** "Question: ... Solution: ... The answer is 9." in the problem's language. */
function workedDoc(rng: Rng, p: ReasoningProblem): string {
  const body = reasoningText(rng, p, rng.next() < MIXED);
  return p.language === 'en'
    ? `${pick(rng, ['Question: ', 'Problem: ', ''])}${p.prompt} ${pick(rng, ['Solution: ', 'Answer: ', ''])}${body} ${answerPhrase(p)}`
    : `${pick(rng, ['问题：', '题目：', ''])}${p.prompt}${pick(rng, ['解答：', '解：', ''])}${body}${answerPhrase(p)}`;
}

/** The required form; the leading space follows "Assistant:". */
const fullForm = (rng: Rng, p: ReasoningProblem): string =>
  ` <think> ${reasoningText(rng, p, rng.next() < MIXED)} </think> <answer> ${p.answer} </answer>`;

/** A reply without tags: the answer, or the worked steps and the answer. */
const bareReply = (rng: Rng, p: ReasoningProblem): string =>
  pick(rng, [` ${p.answer}.`, ` ${answerPhrase(p)}`, ` ${reasoningText(rng, p, rng.next() < MIXED)} ${answerPhrase(p)}`]);

/** The tags, broken in one of several ways. */
function malformed(rng: Rng, p: ReasoningProblem): string {
  const t = reasoningText(rng, p, rng.next() < MIXED),
    r = p.answer;
  return pick(rng, [
    () => ` <think> ${t} </think> ${answerPhrase(p)}`, // no answer block
    () => ` <think> ${t} <answer> ${r} </answer>`, // think never closed
    () => ` ${t} </think> <answer> ${r} </answer>`, // think never opened
    () => ` <answer> ${r} </answer>`, // no thinking
    () => ` <think> ${t} </think> <answer> ${r}.`, // answer never closed
    () => ` <answer> ${r} </answer> <think> ${t} </think>`, // wrong order
  ])();
}

function templateDoc(rng: Rng, p: ReasoningProblem): string {
  const u = rng.next();
  const reply =
    u < TEMPLATE_STYLE.full ? fullForm(rng, p) : u < TEMPLATE_STYLE.full + TEMPLATE_STYLE.malformed ? malformed(rng, p) : bareReply(rng, p);
  return applyTemplate('r1-zero', p.prompt) + reply;
}

/** "User: <problem> Assistant: 9. User: ..." outside the template. */
function chatDoc(rng: Rng, test: Keys): string {
  return Array.from({ length: 1 + rng.int(2) }, () => {
    const p = freshProblem(rng, test);
    return `User: ${p.prompt} Assistant:${bareReply(rng, p)}`;
  }).join(' ');
}

function corpus(rng: Rng, test: Keys): { text: string }[] {
  return Array.from({ length: COUNTS.corpus }, () => {
    let u = rng.next();
    if ((u -= SHARE.word) < 0) return { text: workedDoc(rng, freshProblem(rng, test, { wordShare: 1 })) };
    if ((u -= SHARE.countdown) < 0) return { text: workedDoc(rng, freshProblem(rng, test, { wordShare: 0 })) };
    if ((u -= SHARE.template) < 0) return { text: templateDoc(rng, freshProblem(rng, test)) };
    if ((u -= SHARE.chat) < 0) return { text: chatDoc(rng, test) };
    if ((u -= SHARE.prose) < 0) return { text: proseDoc(rng, new Set()) };
    const lang: Lang = rng.next() < 0.4 ? 'zh' : 'en';
    return { text: Array.from({ length: 2 + rng.int(4) }, () => fact(rng, lang)).join(lang === 'en' ? ' ' : '') };
  });
}

// ---- cold start and general data ------------------------------------------------------------------

/** R1's cold start: readable chains of thought in one language - the reasoning, a summary - and the
 * answer. (Longer ones with a check, which this tiny model could not imitate, are in data/README.md.) */
function coldStart(rng: Rng, test: Keys): { prompt: string; completion: string; language: Lang; task: string }[] {
  return Array.from({ length: COUNTS.coldStart }, () => {
    const p = freshProblem(rng, test);
    const sep = p.language === 'en' ? ' ' : '';
    return {
      prompt: p.prompt,
      completion: ` <think> ${p.reasoning}${sep}${p.summary} </think> <answer> ${p.answer} </answer>`,
      language: p.language,
      task: p.task,
    };
  });
}

const WRITING: [string, string][] = [
  ['Write a short sentence.', '写一个短句。'],
  ['Write one sentence in English.', '用中文写一句话。'],
  ['Say something about your day.', '说一说你的一天。'],
];

/** R1's non-reasoning data (`prompt` too, so the final GRPO can use the prompts): short questions and answers, translations, greetings and writing prompts. */
function general(rng: Rng): { prompt: string; messages: { role: string; content: string }[]; language: Lang }[] {
  return Array.from({ length: COUNTS.general }, () => {
    if (rng.next() < 0.3) {
      const zh = rng.next() < 0.5,
        w = pick(rng, WRITING);
      const [en, zhText] = sentencePair(rng, new Set());
      const prompt = zh ? w[1] : w[0];
      return {
        prompt,
        messages: [
          { role: 'user', content: prompt },
          { role: 'assistant', content: zh ? zhText : en },
        ],
        language: zh ? 'zh' : 'en',
      };
    }
    const [user, assistant] = exchange(rng, new Set());
    // A translation request is answered in the other language: the row's language is the answer's.
    return {
      prompt: user,
      messages: [
        { role: 'user', content: user },
        { role: 'assistant', content: assistant },
      ],
      language: /[\u4e00-\u9fff]/.test(assistant) ? 'zh' : 'en',
    };
  });
}

// ---- main ------------------------------------------------------------------------------------------

/** Every file of data/r1 as [name, rows], from one seed. */
export function makeR1Data(seed = SEED): [string, unknown[]][] {
  // One pool of distinct problems, split at random: train and test follow the same distribution
  // (drawn apart, the train set would run short of the few small Countdown puzzles the test took).
  const pool = new Rng(seed + 2).shuffle(distinctReasoningProblems(seed + 1, COUNTS.test + COUNTS.train));
  const [test, train] = [pool.slice(0, COUNTS.test), pool.slice(COUNTS.test)];
  const testKeys = new Set(test.map((p) => p.key));
  const rng = new Rng(seed);
  const pretraining = corpus(rng, testKeys);
  return [
    ['train.jsonl', train.map(reasoningRow)],
    ['test.jsonl', test.map(reasoningRow)],
    ['corpus.jsonl', pretraining],
    ['cold-start.jsonl', coldStart(rng, testKeys)],
    ['general.jsonl', general(rng)],
    ['heldout.jsonl', heldOut(new Rng(seed + 3), testKeys, pretraining)],
  ];
}

/** Documents drawn as the corpus's (its own generator) that the corpus does not hold: what a
 * pretraining stage's eval_datasets scores as held-out loss. */
function heldOut(rng: Rng, test: Keys, pretraining: { text: string }[]): { text: string }[] {
  const seen = new Set(pretraining.map((d) => d.text));
  return corpus(rng, test)
    .filter((d) => !seen.has(d.text))
    .slice(0, COUNTS.heldOut);
}

function main(outDir: string): void {
  mkdirSync(outDir, { recursive: true });
  for (const [name, rows] of makeR1Data()) {
    writeJsonl(join(outDir, name), rows);
    process.stdout.write(`r1/${name}: ${rows.length} rows\n`);
  }
}

if (process.argv[1] && import.meta.filename === realpathSync(process.argv[1])) {
  main(process.argv[2] ?? join(import.meta.dirname, '..', 'data', 'r1'));
}
