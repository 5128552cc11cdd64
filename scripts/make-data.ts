// Writes the shipped data under data/ (deterministic: same seed, same bytes). Run with
//   npx tsx scripts/make-data.ts [outDir]
//
// The story the data tells, at toy scale, is R1-Zero's: the pretraining corpus teaches arithmetic
// in many phrasings, and the R1-Zero prompt template appears in it; but after that template the
// corpus Assistant mostly chats on through several turns without tags, and only a small share of
// its answers use <think> ... </think> <answer> ... </answer>. So the base model knows its sums but
// rarely answers in the required form (and its rambling ends on another number, which the accuracy
// reward reads as its answer). GRPO with accuracy + format rewards has to find the format.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonl } from '../src/data/io.ts';
import { applyTemplate } from '../src/data/chat.ts';
import { Rng } from '../src/engine/rng.ts';
import { distinctProblems, expression, makeProblem, problemKey, question, taskRow, workedSteps, type Problem, type ProblemOptions } from '../src/data/tasks.ts';

const SEED = 20250122;
/** Operand range of the GRPO prompts and most corpus facts. */
const OPERANDS: ProblemOptions = { min: 1, max: 50 };
const CORPUS_DOCS = 16000;
/** Shares of corpus documents; the rest are arithmetic statements. */
const SHARE = { tagged: 0.03, templateChat: 0.09, chat: 0.15, prose: 0.15 };

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];

// ---- arithmetic in many phrasings -------------------------------------------------------------

const SUM_PHRASES: ((p: Problem) => string)[] = [
  (p) => `${expression(p)} = ${p.result}`,
  (p) => `${p.a} plus ${p.b} is ${p.result}.`,
  (p) => `${p.a} plus ${p.b} equals ${p.result}.`,
  (p) => `What is ${p.a} plus ${p.b}? ${p.result}.`,
  (p) => `${question(p)} ${p.result}.`,
  (p) => `${question(p)} It is ${p.result}.`,
  (p) => `The sum of ${p.a} and ${p.b} is ${p.result}.`,
  (p) => `Add ${p.b} to ${p.a} and you get ${p.result}.`,
  (p) => `${expression(p)}: ${workedSteps(p)}`,
  (p) => `To find ${expression(p)}, ${workedSteps(p)} So ${expression(p)} = ${p.result}.`,
  (p) => `${p.a} 加 ${p.b} 等于 ${p.result}。`,
  (p) => `${p.a} 和 ${p.b} 的和是 ${p.result}。`,
];

const DIFF_PHRASES: ((p: Problem) => string)[] = [
  (p) => `${expression(p)} = ${p.result}`,
  (p) => `${p.a} minus ${p.b} is ${p.result}.`,
  (p) => `What is ${p.a} minus ${p.b}? ${p.result}.`,
  (p) => `${question(p)} ${p.result}.`,
  (p) => `The difference between ${p.a} and ${p.b} is ${p.result}.`,
  (p) => `Take ${p.b} from ${p.a} and ${p.result} is left.`,
  (p) => `${expression(p)}: ${workedSteps(p)}`,
  (p) => `${p.a} 减 ${p.b} 等于 ${p.result}。`,
];

/** A training problem: mostly in the operand range of the prompts, some larger. Neither it nor a
 * step of its worked solution is a test problem, so no training text states a held-out fact. */
function corpusProblem(rng: Rng, exclude: ReadonlySet<string>, o: ProblemOptions = { differenceShare: 0.3 }): Problem {
  for (;;) {
    const wide = rng.next() < 0.2;
    const p = makeProblem(rng, wide ? { ...o, min: 0, max: 99 } : { ...o, ...OPERANDS });
    const steps = [...workedSteps(p).matchAll(/(\d+) ([+-]) (\d+) =/g)].map((m) => `${m[1]}${m[2]}${m[3]}`);
    if (!exclude.has(problemKey(p)) && !steps.some((k) => exclude.has(k))) return p;
  }
}

const statement = (rng: Rng, p: Problem): string => pick(rng, p.kind === 'sum' ? SUM_PHRASES : DIFF_PHRASES)(p);

// ---- simple English and Chinese, aligned so the chat data can translate ----------------------

const SUBJECTS = [['The cat', '小猫'], ['A dog', '一只狗'], ['My friend', '我的朋友'], ['The teacher', '老师'], ['Tom', '汤姆'],
  ['Anna', '安娜'], ['The little bird', '小鸟'], ['My mother', '我的妈妈'], ['We', '我们'], ['The children', '孩子们']] as const;
const VERBS = [['likes', '喜欢'], ['sees', '看见'], ['has', '有'], ['draws', '画'], ['wants', '想要'], ['finds', '找到']] as const;
const OBJECTS = [['a red ball', '一个红色的球'], ['an old book', '一本旧书'], ['a small house', '一座小房子'], ['three apples', '三个苹果'],
  ['the blue sky', '蓝色的天空'], ['a long river', '一条长河'], ['green tea', '绿茶'], ['a white flower', '一朵白花']] as const;
const TIMES = [['', ''], [' today', '今天'], [' in the morning', '早上'], [' at school', '在学校']] as const;

/** One sentence in both languages. */
function sentencePair(rng: Rng): [string, string] {
  const [s, v, o, t] = [pick(rng, SUBJECTS), pick(rng, VERBS), pick(rng, OBJECTS), pick(rng, TIMES)];
  // The English verb loses its -s after "We" and "The children".
  const verb = s[0] === 'We' || s[0] === 'The children' ? v[0].replace(/s$/, '').replace(/^ha$/, 'have') : v[0];
  return [`${s[0]} ${verb} ${o[0]}${t[0]}.`, `${s[1]}${t[1]}${v[1]}${o[1]}。`];
}

function proseDoc(rng: Rng): string {
  const zh = rng.next() < 0.4;
  return Array.from({ length: 1 + rng.int(3) }, () => sentencePair(rng)[zh ? 1 : 0]).join(zh ? '' : ' ');
}

// ---- dialogues ----------------------------------------------------------------------------------

/** "User: Q Assistant: A" for 2-4 turns: the Assistant answers, then the User asks on. */
function turns(rng: Rng, first: Problem, exclude: ReadonlySet<string>, sep: string): string {
  const out: string[] = [];
  let p = first;
  const n = 2 + rng.int(3);
  for (let i = 0; i < n; i++) {
    if (i > 0) {
      out.push(`User: ${question((p = corpusProblem(rng, exclude)))}${sep}`);
    }
    out.push(`Assistant: ${pick(rng, [`${p.result}.`, `It is ${p.result}.`, `${expression(p)} = ${p.result}.`, `${workedSteps(p)}`])}`);
  }
  return out.join(' ');
}

/** Plain chat: "User: What is 3 + 4? Assistant: 7. User: ..." */
function chatDoc(rng: Rng, exclude: ReadonlySet<string>): string {
  const p = corpusProblem(rng, exclude);
  return `User: ${question(p)} ${turns(rng, p, exclude, '')}`;
}

/** The R1-Zero template, answered without tags and chatting on (most template documents). */
function templateChatDoc(rng: Rng, exclude: ReadonlySet<string>): string {
  const p = corpusProblem(rng, exclude);
  return `${applyTemplate('r1-zero', question(p))} ${turns(rng, p, exclude, '.').slice('Assistant: '.length)}`;
}

/** A short reasoning trace and the answer, in the R1 tags; the leading space follows "Assistant:". */
function taggedCompletion(rng: Rng, p: Problem): string {
  const thought = pick(rng, [workedSteps(p), `${expression(p)} = ${p.result}.`, `I need ${expression(p)}. ${workedSteps(p)}`]);
  return ` <think> ${thought} </think> <answer> ${p.result} </answer>`;
}

/** The R1-Zero template answered in the required form (a small share of the corpus). */
function taggedDoc(rng: Rng, exclude: ReadonlySet<string>): string {
  const p = corpusProblem(rng, exclude);
  return applyTemplate('r1-zero', question(p)) + taggedCompletion(rng, p);
}

function corpus(rng: Rng, exclude: ReadonlySet<string>): { text: string }[] {
  const docs: { text: string }[] = [];
  for (let i = 0; i < CORPUS_DOCS; i++) {
    let u = rng.next();
    let text: string;
    if ((u -= SHARE.tagged) < 0) text = taggedDoc(rng, exclude);
    else if ((u -= SHARE.templateChat) < 0) text = templateChatDoc(rng, exclude);
    else if ((u -= SHARE.chat) < 0) text = chatDoc(rng, exclude);
    else if ((u -= SHARE.prose) < 0) text = proseDoc(rng);
    else text = Array.from({ length: 1 + rng.int(3) }, () => statement(rng, corpusProblem(rng, exclude))).join(' ');
    docs.push({ text });
  }
  return docs;
}

// ---- SFT, chat and preference sets -------------------------------------------------------------

/** R1's cold start: a longer, readable chain of thought that checks itself, then the answer. */
function coldStart(rng: Rng, n: number, exclude: ReadonlySet<string>): { prompt: string; completion: string }[] {
  return Array.from({ length: n }, () => {
    let p: Problem, check: string;
    do {
      p = corpusProblem(rng, exclude, { differenceShare: 0.25 });
      check = p.kind === 'sum' ? `${p.result} - ${p.b} = ${p.a}` : `${p.result} + ${p.b} = ${p.a}`;
    } while (exclude.has(check.replace(/ = .*/, '').replace(/ /g, ''))); // the check must not state a test fact either
    const thought = `I need ${expression(p)}. ${workedSteps(p)} Let me check: ${check}, which is right. So the answer is ${p.result}.`;
    return { prompt: question(p), completion: ` <think> ${thought} </think> <answer> ${p.result} </answer>` };
  });
}

function chatRows(rng: Rng, n: number, exclude: ReadonlySet<string>): { messages: { role: string; content: string }[] }[] {
  const kinds: (() => [string, string])[] = [
    () => {
      const [en, zh] = sentencePair(rng);
      return [`Translate into Chinese: ${en}`, zh];
    },
    () => {
      const [en, zh] = sentencePair(rng);
      return [`把这句话翻译成英文：${zh}`, en];
    },
    () => pick(rng, [['Hello!', 'Hello! How can I help you today?'], ['Hi, who are you?', 'I am a small assistant. I can do sums and translate short sentences.'],
      ['Thank you.', 'You are welcome.'], ['你好！', '你好！有什么可以帮你的吗？'], ['Good morning.', 'Good morning! What would you like to do?']] as [string, string][]),
    () => {
      const p = corpusProblem(rng, exclude);
      return [`Please tell me ${p.a} ${p.kind === 'sum' ? 'plus' : 'minus'} ${p.b}.`, `${p.a} ${p.kind === 'sum' ? 'plus' : 'minus'} ${p.b} is ${p.result}.`];
    },
    () => {
      const [en] = sentencePair(rng);
      return [`Repeat after me: ${en}`, en];
    },
  ];
  return Array.from({ length: n }, () => {
    const [user, assistant] = pick(rng, kinds)();
    const messages = [{ role: 'user', content: user }, { role: 'assistant', content: assistant }];
    return rng.next() < 0.2 ? { messages: [{ role: 'system', content: 'You are a helpful assistant.' }, ...messages] } : { messages };
  });
}

/** Chosen: the right answer in the required form. Rejected: a wrong answer in the same form, or
 * the right answer with the form broken (no tags, no think block, unclosed answer). */
function preferences(rng: Rng, n: number, exclude: ReadonlySet<string>): { prompt: string; chosen: string; rejected: string }[] {
  return Array.from({ length: n }, () => {
    const p = corpusProblem(rng, exclude);
    const chosen = taggedCompletion(rng, p);
    const wrong = p.result + pick(rng, [-10, -2, -1, 1, 2, 10]);
    // Half the pairs differ in the answer only, half in the form only.
    const rejected = rng.next() < 0.5 ? ` <think> ${expression(p)} = ${wrong}. </think> <answer> ${wrong} </answer>` : pick(rng, [
      () => ` ${p.result}. User: ${question(corpusProblem(rng, exclude))}`,
      () => ` <answer> ${p.result} </answer>`,
      () => ` <think> ${workedSteps(p)} </think> <answer> ${p.result}`,
    ])();
    return { prompt: question(p), chosen, rejected };
  });
}

// ---- code problems (stdin -> stdout) ------------------------------------------------------------

type CodeProblem = { task: string; inputs: string[]; solve: (input: string) => string };

const ints = (s: string) => s.trim().split(/\s+/).map(Number);
const CODE: CodeProblem[] = [
  { task: 'Read two integers a and b from one line and print a + b.', inputs: ['1 2', '-5 7', '1000 2345', '0 0'], solve: (s) => `${ints(s)[0] + ints(s)[1]}` },
  { task: 'Read two integers a and b and print a - b.', inputs: ['5 3', '3 5', '-2 -2', '100 1'], solve: (s) => `${ints(s)[0] - ints(s)[1]}` },
  { task: 'Read two integers and print their product.', inputs: ['6 7', '-3 4', '0 99', '12 12'], solve: (s) => `${ints(s)[0] * ints(s)[1]}` },
  { task: 'Read a line of text and print it reversed.', inputs: ['hello', 'abc def', 'a', 'racecar'], solve: (s) => [...s].reverse().join('') },
  { task: 'Read a line of text and print it in upper case.', inputs: ['hello', 'MiXeD case', 'abc 123'], solve: (s) => s.toUpperCase() },
  { task: 'Read a word and print the number of vowels (a, e, i, o, u) in it.', inputs: ['banana', 'sky', 'education', 'AEIOU'], solve: (s) => `${(s.match(/[aeiou]/gi) ?? []).length}` },
  { task: 'Read an integer n and print n! (n factorial).', inputs: ['0', '1', '5', '10'], solve: (s) => { let f = 1; for (let i = 2; i <= ints(s)[0]; i++) f *= i; return `${f}`; } },
  { task: 'Read an integer n and print the sum 1 + 2 + ... + n.', inputs: ['1', '10', '100', '0'], solve: (s) => `${(ints(s)[0] * (ints(s)[0] + 1)) / 2}` },
  { task: 'Read an integer n and print "even" if it is even, else "odd".', inputs: ['4', '7', '0', '-3'], solve: (s) => (ints(s)[0] % 2 === 0 ? 'even' : 'odd') },
  { task: 'Read an integer n and print YES if it is a prime number, else NO.', inputs: ['2', '9', '17', '1', '97'], solve: (s) => { const n = ints(s)[0]; if (n < 2) return 'NO'; for (let d = 2; d * d <= n; d++) if (n % d === 0) return 'NO'; return 'YES'; } },
  { task: 'Read a line of integers separated by spaces and print the largest.', inputs: ['3 9 2', '-1 -7 -3', '5', '4 4 4'], solve: (s) => `${Math.max(...ints(s))}` },
  { task: 'Read a line of integers separated by spaces and print their sum.', inputs: ['1 2 3', '10 -10', '7', '100 200 300 400'], solve: (s) => `${ints(s).reduce((a, b) => a + b, 0)}` },
  { task: 'Read a line of integers separated by spaces and print them sorted in increasing order, separated by spaces.', inputs: ['3 1 2', '5 -1 0 5', '9'], solve: (s) => ints(s).sort((a, b) => a - b).join(' ') },
  { task: 'Read an integer n and print the n-th Fibonacci number (F(0) = 0, F(1) = 1).', inputs: ['0', '1', '10', '20'], solve: (s) => { let [a, b] = [0, 1]; for (let i = 0; i < ints(s)[0]; i++) [a, b] = [b, a + b]; return `${a}`; } },
  { task: 'Read two positive integers and print their greatest common divisor.', inputs: ['12 18', '7 13', '100 75', '9 9'], solve: (s) => { let [a, b] = ints(s); while (b) [a, b] = [b, a % b]; return `${a}`; } },
  { task: 'Read a word and print YES if it is a palindrome, else NO.', inputs: ['level', 'hello', 'a', 'abba'], solve: (s) => (s === [...s].reverse().join('') ? 'YES' : 'NO') },
  { task: 'Read a line of words and print the number of words.', inputs: ['the cat sat', 'one', 'a b c d e'], solve: (s) => `${s.trim().split(/\s+/).length}` },
  { task: 'Read an integer n and print the numbers from 1 to n, one per line.', inputs: ['3', '1', '5'], solve: (s) => Array.from({ length: ints(s)[0] }, (_, i) => i + 1).join('\n') },
  { task: 'Read an integer n and print FizzBuzz for 1 to n, one per line (Fizz for multiples of 3, Buzz for 5, FizzBuzz for both).', inputs: ['5', '15', '1'], solve: (s) => Array.from({ length: ints(s)[0] }, (_, i) => { const k = i + 1; return k % 15 === 0 ? 'FizzBuzz' : k % 3 === 0 ? 'Fizz' : k % 5 === 0 ? 'Buzz' : `${k}`; }).join('\n') },
  { task: 'Read a temperature in Celsius (an integer) and print it in Fahrenheit, rounded down to an integer.', inputs: ['0', '100', '-40', '37'], solve: (s) => `${Math.floor((ints(s)[0] * 9) / 5 + 32)}` },
  { task: 'Read an integer n and print the sum of its decimal digits.', inputs: ['123', '0', '9999', '505'], solve: (s) => `${[...String(Math.abs(ints(s)[0]))].reduce((a, d) => a + Number(d), 0)}` },
  { task: 'Read an integer n and print its digits in reverse order (no sign, n >= 0).', inputs: ['123', '100', '7'], solve: (s) => [...s.trim()].reverse().join('') },
  { task: 'Read a line of text and print the number of characters in it.', inputs: ['hello', 'a b', 'abcdefghij'], solve: (s) => `${[...s].length}` },
  { task: 'Read an integer n and print n lines, the i-th holding i stars (*).', inputs: ['1', '3', '4'], solve: (s) => Array.from({ length: ints(s)[0] }, (_, i) => '*'.repeat(i + 1)).join('\n') },
  { task: 'Read a year and print YES if it is a leap year, else NO.', inputs: ['2000', '1900', '2024', '2023'], solve: (s) => { const y = ints(s)[0]; return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 'YES' : 'NO'; } },
  { task: 'Read two integers a and b and print the larger one.', inputs: ['3 8', '8 3', '-1 -2', '5 5'], solve: (s) => `${Math.max(...ints(s))}` },
  { task: 'Read an integer n and print n written in binary.', inputs: ['0', '5', '8', '255'], solve: (s) => ints(s)[0].toString(2) },
  { task: 'Read a line of integers and print how many of them are even.', inputs: ['1 2 3 4', '1 3 5', '0', '2 2 2 7'], solve: (s) => `${ints(s).filter((x) => x % 2 === 0).length}` },
  { task: 'Read a word and print it with its first letter in upper case.', inputs: ['hello', 'World', 'x'], solve: (s) => s.charAt(0).toUpperCase() + s.slice(1) },
  { task: 'Read two integers a and b (b > 0) and print the quotient and the remainder of a divided by b, separated by a space.', inputs: ['17 5', '20 4', '3 7'], solve: (s) => `${Math.floor(ints(s)[0] / ints(s)[1])} ${ints(s)[0] % ints(s)[1]}` },
  { task: 'Read an integer n and print the multiplication table of n from 1 to 5, one line each as "n x i = p".', inputs: ['2', '7'], solve: (s) => Array.from({ length: 5 }, (_, i) => `${ints(s)[0]} x ${i + 1} = ${ints(s)[0] * (i + 1)}`).join('\n') },
  { task: 'Read a line of integers and print their average, rounded down to an integer.', inputs: ['1 2 3', '10 20', '5', '1 2'], solve: (s) => `${Math.floor(ints(s).reduce((a, b) => a + b, 0) / ints(s).length)}` },
];

function codeProblems(): { prompt: string; language: string; tests: { input: string; output: string }[] }[] {
  return CODE.map((c, i) => {
    const language = i % 3 === 2 ? 'javascript' : 'python';
    const name = language === 'python' ? 'Python' : 'JavaScript (Node.js)';
    return {
      prompt: `Write a ${name} program. ${c.task} Read from standard input and write to standard output.`,
      language,
      tests: c.inputs.map((input) => ({ input: input + '\n', output: c.solve(input) + '\n' })),
    };
  });
}

// ---- main -----------------------------------------------------------------------------------------

function main(outDir: string): void {
  mkdirSync(outDir, { recursive: true });
  // Held-out problems first, so that neither the GRPO prompts nor the corpus contain them.
  const test = distinctProblems(SEED + 1, 200, OPERANDS);
  const testKeys = new Set(test.map(problemKey));
  const train = distinctProblems(SEED + 2, 1500, OPERANDS, testKeys).map(taskRow);
  const rng = new Rng(SEED);
  const files: [string, unknown[]][] = [
    ['sums.jsonl', train],
    ['sums-test.jsonl', test.map(taskRow)],
    ['corpus.jsonl', corpus(rng, testKeys)],
    ['cold-start.jsonl', coldStart(rng, 300, testKeys)],
    ['chat.jsonl', chatRows(rng, 300, testKeys)],
    ['preferences.jsonl', preferences(rng, 400, testKeys)],
    ['code-problems.jsonl', codeProblems()],
  ];
  for (const [name, rows] of files) {
    writeJsonl(join(outDir, name), rows);
    process.stdout.write(`${name}: ${rows.length} rows\n`);
  }
}

main(process.argv[2] ?? join(import.meta.dirname, '..', 'data'));
