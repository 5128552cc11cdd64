// The shipped code problems are solvable and discriminating: for a few of them in each language, a
// correct hand-written program earns the full code reward through the real sandbox, and a program
// with a typical bug earns less. (data-shipped.test.ts checks the file's shape and counts.)
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCodeReward } from '../rewards/code.ts';
import { readRows, type Row } from '../src/data/io.ts';

type Case = { find: string; language: 'python' | 'javascript'; right: string; wrong: string };

const CASES: Case[] = [
  {
    find: 'run-length encoding',
    language: 'python',
    right:
      's = input().strip()\nout = []\ni = 0\nwhile i < len(s):\n    j = i\n    while j < len(s) and s[j] == s[i]:\n        j += 1\n    out.append(s[i] + str(j - i))\n    i = j\nprint("".join(out))',
    // Leaves out the count of single letters.
    wrong:
      'from itertools import groupby\nruns = [(k, len(list(g))) for k, g in groupby(input().strip())]\nprint("".join(k + (str(n) if n > 1 else "") for k, n in runs))',
  },
  {
    find: 'prime factors',
    language: 'python',
    right:
      'n = int(input())\nf = []\nd = 2\nwhile d * d <= n:\n    while n % d == 0:\n        f.append(d)\n        n //= d\n    d += 1\nif n > 1:\n    f.append(n)\nprint(*f)',
    // Each factor once.
    wrong: 'n = int(input())\nprint(*[p for p in range(2, n + 1) if n % p == 0 and all(p % d for d in range(2, p))])',
  },
  {
    find: 'command to a stack of integers',
    language: 'python',
    right:
      'import sys\nst = []\nfor line in sys.stdin.read().splitlines():\n    p = line.split()\n    if not p:\n        continue\n    if p[0] == "push":\n        st.append(int(p[1]))\n    elif p[0] == "pop" and st:\n        st.pop()\n    elif p[0] == "add" and len(st) >= 2:\n        st.append(st.pop() + st.pop())\nprint(" ".join(map(str, st)) if st else "EMPTY")',
    // An add on a one-value stack pops it anyway.
    wrong:
      'import sys\nst = []\nfor line in sys.stdin.read().splitlines():\n    p = line.split()\n    if not p:\n        continue\n    if p[0] == "push":\n        st.append(int(p[1]))\n    elif p[0] == "pop" and st:\n        st.pop()\n    elif p[0] == "add" and st:\n        st.append(st.pop() + (st.pop() if st else 0)) if len(st) > 1 else st.pop()\nprint(" ".join(map(str, st)) if st else "EMPTY")',
  },
  {
    find: 'written in base b',
    language: 'python',
    right:
      'n, b = map(int, input().split())\ns = ""\nwhile True:\n    s = "0123456789ABCDEF"[n % b] + s\n    n //= b\n    if n == 0:\n        break\nprint(s)',
    // Prints nothing for 0.
    wrong: 'n, b = map(int, input().split())\ns = ""\nwhile n > 0:\n    s = "0123456789ABCDEF"[n % b] + s\n    n //= b\nprint(s)',
  },
  {
    find: 'moved k places forward',
    language: 'javascript',
    right:
      'const [k, text] = require("fs").readFileSync(0, "utf8").split("\\n");\nconsole.log([...text].map((c) => (c === " " ? c : String.fromCharCode(97 + ((c.charCodeAt(0) - 97 + Number(k)) % 26)))).join(""));',
    // No wrap-around after z.
    wrong:
      'const [k, text] = require("fs").readFileSync(0, "utf8").split("\\n");\nconsole.log([...text].map((c) => (c === " " ? c : String.fromCharCode(c.charCodeAt(0) + Number(k)))).join(""));',
  },
  {
    find: 'modulo m',
    language: 'javascript',
    right:
      'let [a, b, m] = require("fs").readFileSync(0, "utf8").trim().split(/\\s+/).map(BigInt);\nlet r = 1n % m;\na %= m;\nwhile (b > 0n) {\n  if (b & 1n) r = (r * a) % m;\n  a = (a * a) % m;\n  b >>= 1n;\n}\nconsole.log(String(r));',
    // Plain numbers: the products lose precision once they pass 2^53.
    wrong:
      'let [a, b, m] = require("fs").readFileSync(0, "utf8").trim().split(/\\s+/).map(Number);\nlet r = 1 % m;\na %= m;\nwhile (b > 0) {\n  if (b % 2) r = (r * a) % m;\n  a = (a * a) % m;\n  b = Math.floor(b / 2);\n}\nconsole.log(r);',
  },
  {
    find: 'last person left',
    language: 'javascript',
    right:
      'const [n, k] = require("fs").readFileSync(0, "utf8").trim().split(" ").map(Number);\nconst c = Array.from({ length: n }, (_, i) => i + 1);\nlet at = 0;\nwhile (c.length > 1) {\n  at = (at + k - 1) % c.length;\n  c.splice(at, 1);\n}\nconsole.log(c[0]);',
    // Counts on from the removed person's place plus one (skips a person each round).
    wrong:
      'const [n, k] = require("fs").readFileSync(0, "utf8").trim().split(" ").map(Number);\nconst c = Array.from({ length: n }, (_, i) => i + 1);\nlet at = 0;\nwhile (c.length > 1) {\n  at = (at + k) % c.length;\n  c.splice(at, 1);\n}\nconsole.log(c[0]);',
  },
  {
    find: 'm minutes later',
    language: 'javascript',
    right:
      'const [hm, m] = require("fs").readFileSync(0, "utf8").trim().split(" ");\nconst [h, mi] = hm.split(":").map(Number);\nconst t = (h * 60 + mi + Number(m)) % 1440;\nconst p = (x) => String(x).padStart(2, "0");\nconsole.log(`${p(Math.floor(t / 60))}:${p(t % 60)}`);',
    // No zero padding.
    wrong:
      'const [hm, m] = require("fs").readFileSync(0, "utf8").trim().split(" ");\nconst [h, mi] = hm.split(":").map(Number);\nconst t = (h * 60 + mi + Number(m)) % 1440;\nconsole.log(`${Math.floor(t / 60)}:${t % 60}`);',
  },
];

let problems: Row[];
// The real code reward, with its own sandbox pool (one worker per language: the machine is shared).
const reward = makeCodeReward({ language: null, workers: 1 });
beforeAll(async () => {
  problems = await readRows(join(import.meta.dirname, '..', 'data', 'code-problems.jsonl'));
});
afterAll(async () => {
  await reward.close();
});

describe('shipped code problems through the sandbox code reward', () => {
  it('a correct program passes every test and a buggy one does not, in both languages', { timeout: 120_000 }, async () => {
    const rows = CASES.map((c) => {
      const hits = problems.filter((p) => (p.prompt as string).includes(c.find));
      expect(hits, c.find).toHaveLength(1);
      expect(hits[0].language, c.find).toBe(c.language);
      return hits[0];
    });
    const fence = (c: Case, code: string) => `<think> ... </think>\n\`\`\`${c.language}\n${code}\n\`\`\``;
    const completions = CASES.flatMap((c) => [fence(c, c.right), fence(c, c.wrong)]);
    const scores = await reward({ prompts: completions.map(() => ''), completions, rows: rows.flatMap((r) => [r, r]) });
    CASES.forEach((c, i) => {
      expect(scores[2 * i], `${c.find}: correct ${c.language} program`).toBe(1);
      // Each buggy program runs and passes some tests (a near miss, not a crash), but not all.
      expect(scores[2 * i + 1], `${c.find}: buggy ${c.language} program`).toBeGreaterThan(0);
      expect(scores[2 * i + 1], `${c.find}: buggy ${c.language} program`).toBeLessThan(1);
    });
  });
});
