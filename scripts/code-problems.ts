// Code problems for the code reward (stdin -> stdout), each with tests computed by a reference solver.
// Written to data/code-problems.jsonl by scripts/make-data.ts.

// ---- code problems (stdin -> stdout) -----------------------------------------------------------------

type CodeProblem = { task: string; inputs: string[]; solve: (input: string) => string };

const ints = (s: string) => s.trim().split(/\s+/).map(Number);
const words = (s: string) => s.trim().split(/\s+/);
const CODE: CodeProblem[] = [
  {
    task: 'Read two integers a and b from one line and print a + b.',
    inputs: ['1 2', '-5 7', '1000 2345', '0 0'],
    solve: (s) => `${ints(s)[0] + ints(s)[1]}`,
  },
  {
    task: 'Read two integers a and b and print a - b.',
    inputs: ['5 3', '3 5', '-2 -2', '100 1'],
    solve: (s) => `${ints(s)[0] - ints(s)[1]}`,
  },
  {
    task: 'Read two integers and print their product.',
    inputs: ['6 7', '-3 4', '0 99', '12 12'],
    solve: (s) => `${ints(s)[0] * ints(s)[1]}`,
  },
  {
    task: 'Read a line of text and print it reversed.',
    inputs: ['hello', 'abc def', 'a', 'racecar'],
    solve: (s) => [...s].reverse().join(''),
  },
  { task: 'Read a line of text and print it in upper case.', inputs: ['hello', 'MiXeD case', 'abc 123'], solve: (s) => s.toUpperCase() },
  {
    task: 'Read a word and print the number of vowels (a, e, i, o, u) in it.',
    inputs: ['banana', 'sky', 'education', 'AEIOU'],
    solve: (s) => `${(s.match(/[aeiou]/gi) ?? []).length}`,
  },
  {
    task: 'Read an integer n and print n! (n factorial).',
    inputs: ['0', '1', '5', '10'],
    solve: (s) => {
      let f = 1;
      for (let i = 2; i <= ints(s)[0]; i++) f *= i;
      return `${f}`;
    },
  },
  {
    task: 'Read an integer n and print the sum 1 + 2 + ... + n.',
    inputs: ['1', '10', '100', '0'],
    solve: (s) => `${(ints(s)[0] * (ints(s)[0] + 1)) / 2}`,
  },
  {
    task: 'Read an integer n and print "even" if it is even, else "odd".',
    inputs: ['4', '7', '0', '-3'],
    solve: (s) => (ints(s)[0] % 2 === 0 ? 'even' : 'odd'),
  },
  {
    task: 'Read an integer n and print YES if it is a prime number, else NO.',
    inputs: ['2', '9', '17', '1', '97'],
    solve: (s) => {
      const n = ints(s)[0];
      if (n < 2) return 'NO';
      for (let d = 2; d * d <= n; d++) if (n % d === 0) return 'NO';
      return 'YES';
    },
  },
  {
    task: 'Read a line of integers separated by spaces and print the largest.',
    inputs: ['3 9 2', '-1 -7 -3', '5', '4 4 4'],
    solve: (s) => `${Math.max(...ints(s))}`,
  },
  {
    task: 'Read a line of integers separated by spaces and print their sum.',
    inputs: ['1 2 3', '10 -10', '7', '100 200 300 400'],
    solve: (s) => `${ints(s).reduce((a, b) => a + b, 0)}`,
  },
  {
    task: 'Read a line of integers separated by spaces and print them sorted in increasing order, separated by spaces.',
    inputs: ['3 1 2', '5 -1 0 5', '9'],
    solve: (s) =>
      ints(s)
        .sort((a, b) => a - b)
        .join(' '),
  },
  {
    task: 'Read an integer n and print the n-th Fibonacci number (F(0) = 0, F(1) = 1).',
    inputs: ['0', '1', '10', '20'],
    solve: (s) => {
      let [a, b] = [0, 1];
      for (let i = 0; i < ints(s)[0]; i++) [a, b] = [b, a + b];
      return `${a}`;
    },
  },
  {
    task: 'Read two positive integers and print their greatest common divisor.',
    inputs: ['12 18', '7 13', '100 75', '9 9'],
    solve: (s) => {
      let [a, b] = ints(s);
      while (b) [a, b] = [b, a % b];
      return `${a}`;
    },
  },
  {
    task: 'Read a word and print YES if it is a palindrome, else NO.',
    inputs: ['level', 'hello', 'a', 'abba'],
    solve: (s) => (s === [...s].reverse().join('') ? 'YES' : 'NO'),
  },
  {
    task: 'Read a line of words and print the number of words.',
    inputs: ['the cat sat', 'one', 'a b c d e'],
    solve: (s) => `${s.trim().split(/\s+/).length}`,
  },
  {
    task: 'Read an integer n and print the numbers from 1 to n, one per line.',
    inputs: ['3', '1', '5'],
    solve: (s) => Array.from({ length: ints(s)[0] }, (_, i) => i + 1).join('\n'),
  },
  {
    task: 'Read an integer n and print FizzBuzz for 1 to n, one per line (Fizz for multiples of 3, Buzz for 5, FizzBuzz for both).',
    inputs: ['5', '15', '1'],
    solve: (s) =>
      Array.from({ length: ints(s)[0] }, (_, i) => {
        const k = i + 1;
        return k % 15 === 0 ? 'FizzBuzz' : k % 3 === 0 ? 'Fizz' : k % 5 === 0 ? 'Buzz' : `${k}`;
      }).join('\n'),
  },
  {
    task: 'Read a temperature in Celsius (an integer) and print it in Fahrenheit, rounded down to an integer.',
    inputs: ['0', '100', '-40', '37'],
    solve: (s) => `${Math.floor((ints(s)[0] * 9) / 5 + 32)}`,
  },
  {
    task: 'Read an integer n and print the sum of its decimal digits.',
    inputs: ['123', '0', '9999', '505'],
    solve: (s) => `${[...String(Math.abs(ints(s)[0]))].reduce((a, d) => a + Number(d), 0)}`,
  },
  {
    task: 'Read an integer n (n >= 0) and print its digits in reverse order.',
    inputs: ['123', '100', '7'],
    solve: (s) => [...s.trim()].reverse().join(''),
  },
  {
    task: 'Read a line of text and print the number of characters in it.',
    inputs: ['hello', 'a b', 'abcdefghij'],
    solve: (s) => `${[...s].length}`,
  },
  {
    task: 'Read an integer n and print n lines, the i-th holding i stars (*).',
    inputs: ['1', '3', '4'],
    solve: (s) => Array.from({ length: ints(s)[0] }, (_, i) => '*'.repeat(i + 1)).join('\n'),
  },
  {
    task: 'Read a year and print YES if it is a leap year, else NO.',
    inputs: ['2000', '1900', '2024', '2023'],
    solve: (s) => {
      const y = ints(s)[0];
      return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 'YES' : 'NO';
    },
  },
  {
    task: 'Read two integers a and b and print the larger one.',
    inputs: ['3 8', '8 3', '-1 -2', '5 5'],
    solve: (s) => `${Math.max(...ints(s))}`,
  },
  {
    task: 'Read an integer n (n >= 0) and print n written in binary.',
    inputs: ['0', '5', '8', '255'],
    solve: (s) => ints(s)[0].toString(2),
  },
  {
    task: 'Read a line of integers and print how many of them are even.',
    inputs: ['1 2 3 4', '1 3 5', '0', '2 2 2 7'],
    solve: (s) => `${ints(s).filter((x) => x % 2 === 0).length}`,
  },
  {
    task: 'Read a word and print it with its first letter in upper case.',
    inputs: ['hello', 'World', 'x'],
    solve: (s) => s.charAt(0).toUpperCase() + s.slice(1),
  },
  {
    task: 'Read two positive integers a and b and print the quotient and the remainder of a divided by b, separated by a space.',
    inputs: ['17 5', '20 4', '3 7'],
    solve: (s) => `${Math.floor(ints(s)[0] / ints(s)[1])} ${ints(s)[0] % ints(s)[1]}`,
  },
  {
    task: 'Read an integer n and print the multiplication table of n from 1 to 5, one line each as "n x i = p".',
    inputs: ['2', '7'],
    solve: (s) => Array.from({ length: 5 }, (_, i) => `${ints(s)[0]} x ${i + 1} = ${ints(s)[0] * (i + 1)}`).join('\n'),
  },
  {
    task: 'Read a line of positive integers and print their average, rounded down to an integer.',
    inputs: ['1 2 3', '10 20', '5', '1 2'],
    solve: (s) => `${Math.floor(ints(s).reduce((a, b) => a + b, 0) / ints(s).length)}`,
  },
  // ---- added later: appended, so the rows above keep their content and language ----
  // strings
  {
    task: 'Read a word of lower-case letters and print its run-length encoding: each maximal run of one letter becomes the letter followed by the length of the run, e.g. aaabcc becomes a3b1c2.',
    inputs: ['aaabcc', 'a', 'abc', 'zzzzzzzzzzzz', 'aabbaa'],
    solve: (s) => (s.match(/(.)\1*/g) ?? []).map((run) => `${run[0]}${run.length}`).join(''),
  },
  {
    task: 'Read two words on one line, separated by a space, and print YES if one is an anagram of the other (the same letters, each the same number of times), else NO.',
    inputs: ['listen silent', 'abc abd', 'a a', 'aab abb', 'night thing'],
    solve: (s) => {
      const [a, b] = words(s).map((w) => [...w].sort().join(''));
      return a === b ? 'YES' : 'NO';
    },
  },
  {
    task: 'The first line holds an integer k (0 <= k <= 25), the second a line of lower-case letters and spaces. Print the second line with every letter moved k places forward in the alphabet (after z comes a again); spaces stay as they are.',
    inputs: ['3\nabc xyz', '0\nhello', '25\nab', '13\nhello world'],
    solve: (s) => {
      const [k, text] = s.split('\n');
      return [...text].map((c) => (c === ' ' ? c : String.fromCharCode(97 + ((c.charCodeAt(0) - 97 + Number(k)) % 26)))).join('');
    },
  },
  {
    task: 'Read a word of lower-case letters and print the letter that occurs most often in it; if several letters occur equally often, print the one that comes first in the alphabet.',
    inputs: ['banana', 'abc', 'zzyy', 'mississippi', 'q'],
    solve: (s) => {
      const n = new Map<string, number>();
      for (const c of s) n.set(c, (n.get(c) ?? 0) + 1);
      return [...n].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1))[0][0];
    },
  },
  {
    task: 'Read a line of words separated by single spaces and print the words in reverse order, separated by single spaces.',
    inputs: ['the quick brown fox', 'hello', 'a b', 'one two three'],
    solve: (s) => words(s).reverse().join(' '),
  },
  {
    task: 'Read a line of words separated by single spaces and print the longest word; if several words are equally long, print the first of them.',
    inputs: ['the quick brown fox', 'a bb cc', 'word', 'hi yo'],
    solve: (s) => words(s).reduce((best, w) => (w.length > best.length ? w : best)),
  },
  {
    task: 'Read a binary number (a string of the digits 0 and 1) and print its value in decimal.',
    inputs: ['0', '1', '101', '11111111', '1000000000'],
    solve: (s) => `${parseInt(s.trim(), 2)}`,
  },
  {
    task: 'Read a line made of the characters ( ) [ ] { } and print YES if the brackets are balanced and correctly nested, else NO.',
    inputs: ['()[]{}', '([)]', '(((', '{[()()]}', ')('],
    solve: (s) => {
      const open: string[] = [];
      const pair: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
      for (const c of s.trim()) {
        if ('([{'.includes(c)) open.push(c);
        else if (open.pop() !== pair[c]) return 'NO';
      }
      return open.length === 0 ? 'YES' : 'NO';
    },
  },
  // lists
  {
    task: 'Read a line of integers and print the second largest distinct value among them; print NONE if there is no such value (all the values are equal).',
    inputs: ['3 1 4 1 5', '7 7 7', '-1 -5', '10 20 20', '5'],
    solve: (s) => {
      const d = [...new Set(ints(s))].sort((a, b) => b - a);
      return d.length > 1 ? `${d[1]}` : 'NONE';
    },
  },
  {
    task: 'Read a line of integers and print their running totals (the sum of the first 1, the first 2, ... of them), separated by spaces.',
    inputs: ['1 2 3 4', '5', '-1 1 -1', '0 0 0'],
    solve: (s) => {
      let t = 0;
      return ints(s)
        .map((x) => (t += x))
        .join(' ');
    },
  },
  {
    task: 'Read a line of integers and print the largest sum of a non-empty run of consecutive values among them.',
    inputs: ['-2 1 -3 4 -1 2 1 -5 4', '-3 -1 -2', '5', '1 2 3', '2 -1 2'],
    solve: (s) => {
      let best = -Infinity,
        cur = 0;
      for (const x of ints(s)) {
        cur = Math.max(x, cur + x);
        best = Math.max(best, cur);
      }
      return `${best}`;
    },
  },
  {
    task: 'Read a line of integers and print them with repeated values removed (keep the first occurrence of each value, in the original order), separated by spaces.',
    inputs: ['1 2 1 3 2', '4 4 4', '5 -5 5', '1'],
    solve: (s) => [...new Set(ints(s))].join(' '),
  },
  {
    task: 'The first line holds an integer t, the second a line of integers. Print the number of pairs of positions i < j whose two values add up to t.',
    inputs: ['5\n1 4 2 3', '4\n2 2 2', '10\n1 2 3', '0\n0', '0\n-1 1 0 0'],
    solve: (s) => {
      const [t, ...xs] = [ints(s.split('\n')[0])[0], ...ints(s.split('\n')[1])];
      let n = 0;
      for (let i = 0; i < xs.length; i++) for (let j = i + 1; j < xs.length; j++) if (xs[i] + xs[j] === t) n++;
      return `${n}`;
    },
  },
  {
    task: 'The first line holds an integer k (k >= 0), the second a line of integers. Print the values rotated k places to the right (the last value moves to the front, k times), separated by spaces.',
    inputs: ['1\n1 2 3', '0\n1 2 3', '5\n1 2', '3\n7 8 9', '2\n4'],
    solve: (s) => {
      const k = ints(s.split('\n')[0])[0],
        xs = ints(s.split('\n')[1]),
        r = k % xs.length;
      return [...xs.slice(xs.length - r), ...xs.slice(0, xs.length - r)].join(' ');
    },
  },
  {
    task: 'The first line holds two integers r and c, then come r lines of c integers each (a matrix). Print its transpose: c lines of r integers each, separated by spaces.',
    inputs: ['2 3\n1 2 3\n4 5 6', '1 1\n7', '1 3\n1 2 3', '3 1\n1\n2\n3'],
    solve: (s) => {
      const [head, ...rows] = s.split('\n');
      const m = rows.map(ints),
        c = ints(head)[1];
      return Array.from({ length: c }, (_, j) => m.map((row) => row[j]).join(' ')).join('\n');
    },
  },
  {
    task: 'Read a line of integers and print the length of the longest run of consecutive values in which each value is strictly greater than the one before it.',
    inputs: ['1 2 3 2 3', '5 4 3', '7', '1 1 1', '1 3 5 7 9'],
    solve: (s) => {
      const xs = ints(s);
      let best = 1,
        cur = 1;
      for (let i = 1; i < xs.length; i++) {
        cur = xs[i] > xs[i - 1] ? cur + 1 : 1;
        best = Math.max(best, cur);
      }
      return `${best}`;
    },
  },
  // number theory
  {
    task: 'Read a positive integer n and print how many positive divisors it has.',
    inputs: ['1', '12', '13', '36', '1000000'],
    solve: (s) => {
      const n = ints(s)[0];
      let k = 0;
      for (let d = 1; d <= n; d++) if (n % d === 0) k++;
      return `${k}`;
    },
  },
  {
    task: 'Read two positive integers and print their least common multiple.',
    inputs: ['4 6', '7 13', '5 5', '1 100', '21 6'],
    solve: (s) => {
      const [a, b] = ints(s);
      let [x, y] = [a, b];
      while (y) [x, y] = [y, x % y];
      return `${(a / x) * b}`;
    },
  },
  {
    task: 'Read an integer n (n >= 2) and print its prime factors in increasing order, each as often as it divides n, separated by spaces.',
    inputs: ['12', '17', '360', '1001', '1024'],
    solve: (s) => {
      let n = ints(s)[0];
      const f: number[] = [];
      for (let d = 2; d * d <= n; d++)
        while (n % d === 0) {
          f.push(d);
          n /= d;
        }
      if (n > 1) f.push(n);
      return f.join(' ');
    },
  },
  {
    task: 'Read a positive integer n and print how many steps it takes to reach 1 when each step halves n if it is even and replaces it with 3n + 1 if it is odd (the Collatz process).',
    inputs: ['1', '2', '6', '7', '27'],
    solve: (s) => {
      let n = ints(s)[0],
        k = 0;
      while (n !== 1) {
        n = n % 2 === 0 ? n / 2 : 3 * n + 1;
        k++;
      }
      return `${k}`;
    },
  },
  {
    task: 'Read a positive integer n and print PERFECT, ABUNDANT or DEFICIENT as the sum of its positive divisors smaller than n is equal to, greater than or less than n.',
    inputs: ['6', '12', '1', '28', '13'],
    solve: (s) => {
      const n = ints(s)[0];
      let t = 0;
      for (let d = 1; d < n; d++) if (n % d === 0) t += d;
      return t === n ? 'PERFECT' : t > n ? 'ABUNDANT' : 'DEFICIENT';
    },
  },
  {
    task: 'Read two integers n (n >= 0) and b (2 <= b <= 16) and print n written in base b, using the upper-case letters A to F for the digits 10 to 15.',
    inputs: ['255 16', '0 2', '10 3', '100 7', '4095 16'],
    solve: (s) => ints(s)[0].toString(ints(s)[1]).toUpperCase(),
  },
  {
    task: 'Read an integer n and print every prime number from 2 to n (inclusive) in increasing order, separated by spaces; print NONE if there is none.',
    inputs: ['10', '1', '2', '30'],
    solve: (s) => {
      const ps = Array.from({ length: Math.max(0, ints(s)[0] - 1) }, (_, i) => i + 2).filter((p) =>
        Array.from({ length: p - 2 }, (_, i) => i + 2).every((d) => p % d !== 0),
      );
      return ps.length ? ps.join(' ') : 'NONE';
    },
  },
  {
    task: 'Read three integers a, b and m (0 <= a, b <= 10^9, 1 <= m <= 10^9 + 7) and print a to the power b, modulo m.',
    inputs: ['2 10 1000', '3 0 7', '5 3 1', '7 222 1000', '123456789 987654321 1000000007'],
    solve: (s) => {
      const [base, exp, m] = ints(s).map(BigInt);
      let a = base % m,
        b = exp,
        r = 1n % m;
      while (b > 0n) {
        if (b & 1n) r = (r * a) % m;
        a = (a * a) % m;
        b >>= 1n;
      }
      return `${r}`;
    },
  },
  // simulation
  {
    task: 'Read a line of moves, each one of the letters U, D, L and R (one step up, down, left or right), made by a robot that starts at x = 0, y = 0 (up increases y, right increases x). Print its final position as x and y separated by a space.',
    inputs: ['UURDL', 'LLLL', 'UDUD', 'R'],
    solve: (s) => {
      let x = 0,
        y = 0;
      for (const c of s.trim()) {
        if (c === 'U') y++;
        if (c === 'D') y--;
        if (c === 'L') x--;
        if (c === 'R') x++;
      }
      return `${x} ${y}`;
    },
  },
  {
    task: 'The first line holds the starting balance of a bank account (an integer); each further line is "deposit X" or "withdraw X" with a positive integer X. A withdrawal larger than the current balance is refused and changes nothing. Print the final balance and the number of refused withdrawals, separated by a space.',
    inputs: ['100\ndeposit 50\nwithdraw 30', '10\nwithdraw 20\nwithdraw 5', '0', '5\nwithdraw 5\nwithdraw 1\ndeposit 2'],
    solve: (s) => {
      const [first, ...ops] = s.split('\n');
      let bal = Number(first),
        refused = 0;
      for (const op of ops) {
        const [what, x] = op.split(' ');
        if (what === 'deposit') bal += Number(x);
        else if (Number(x) > bal) refused++;
        else bal -= Number(x);
      }
      return `${bal} ${refused}`;
    },
  },
  {
    task: 'Read two positive integers n and k. People numbered 1 to n stand in a circle; counting starts at person 1, and every k-th person counted leaves the circle, the counting going on from the next person. Print the number of the last person left.',
    inputs: ['5 2', '7 3', '1 1', '6 1', '10 3'],
    solve: (s) => {
      const [n, k] = ints(s);
      const circle = Array.from({ length: n }, (_, i) => i + 1);
      let at = 0;
      while (circle.length > 1) {
        at = (at + k - 1) % circle.length;
        circle.splice(at, 1);
      }
      return `${circle[0]}`;
    },
  },
  {
    task: 'Each input line is a command to a stack of integers: "push X" puts X on top, "pop" removes the top value, "add" removes the top two values and puts their sum on top. A pop on an empty stack, or an add with fewer than two values, does nothing. Print the values left, from bottom to top, separated by spaces, or EMPTY if none are left.',
    inputs: ['push 1\npush 2\nadd', 'push 5\npop', 'pop\npush 4\npush 6\npush 1\nadd', 'push 3\nadd'],
    solve: (s) => {
      const st: number[] = [];
      for (const line of s.split('\n')) {
        const [op, x] = line.split(' ');
        if (op === 'push') st.push(Number(x));
        else if (op === 'pop') st.pop();
        else if (op === 'add' && st.length >= 2) st.push(st.pop()! + st.pop()!);
      }
      return st.length ? st.join(' ') : 'EMPTY';
    },
  },
  {
    task: 'Read a time of day as HH:MM (24-hour clock) and a non-negative integer m, separated by a space, and print the time m minutes later as HH:MM.',
    inputs: ['23:30 45', '00:00 0', '12:59 1', '05:10 1440', '10:00 2000'],
    solve: (s) => {
      const [hm, m] = s.split(' ');
      const [h, mi] = hm.split(':').map(Number);
      const t = (h * 60 + mi + Number(m)) % 1440;
      return `${String(Math.floor(t / 60)).padStart(2, '0')}:${String(t % 60).padStart(2, '0')}`;
    },
  },
];

/** Problems before this index keep the language they were first shipped with. */
const FIRST_BATCH = 32;

export function codeProblems(): { prompt: string; language: string; tests: { input: string; output: string }[] }[] {
  return CODE.map((c, i) => {
    // The first batch: two in three in Python. The later ones: two in three in JavaScript, so that
    // each language ends with about half of the problems (both sandboxes get exercised).
    const language = i < FIRST_BATCH ? (i % 3 === 2 ? 'javascript' : 'python') : i % 3 === 2 ? 'python' : 'javascript';
    const name = language === 'python' ? 'Python' : 'JavaScript (Node.js)';
    return {
      prompt: `Write a ${name} program. ${c.task} Read from standard input and write to standard output.`,
      language,
      tests: c.inputs.map((input) => ({ input: input + '\n', output: c.solve(input) + '\n' })),
    };
  });
}
