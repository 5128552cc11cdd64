// Code problems for the code reward (stdin -> stdout), each with tests computed by a reference solver.
// Written to data/code-problems.jsonl by scripts/make-data.ts.

// ---- code problems (stdin -> stdout) -----------------------------------------------------------------

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
  { task: 'Read an integer n (n >= 0) and print its digits in reverse order.', inputs: ['123', '100', '7'], solve: (s) => [...s.trim()].reverse().join('') },
  { task: 'Read a line of text and print the number of characters in it.', inputs: ['hello', 'a b', 'abcdefghij'], solve: (s) => `${[...s].length}` },
  { task: 'Read an integer n and print n lines, the i-th holding i stars (*).', inputs: ['1', '3', '4'], solve: (s) => Array.from({ length: ints(s)[0] }, (_, i) => '*'.repeat(i + 1)).join('\n') },
  { task: 'Read a year and print YES if it is a leap year, else NO.', inputs: ['2000', '1900', '2024', '2023'], solve: (s) => { const y = ints(s)[0]; return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 'YES' : 'NO'; } },
  { task: 'Read two integers a and b and print the larger one.', inputs: ['3 8', '8 3', '-1 -2', '5 5'], solve: (s) => `${Math.max(...ints(s))}` },
  { task: 'Read an integer n (n >= 0) and print n written in binary.', inputs: ['0', '5', '8', '255'], solve: (s) => ints(s)[0].toString(2) },
  { task: 'Read a line of integers and print how many of them are even.', inputs: ['1 2 3 4', '1 3 5', '0', '2 2 2 7'], solve: (s) => `${ints(s).filter((x) => x % 2 === 0).length}` },
  { task: 'Read a word and print it with its first letter in upper case.', inputs: ['hello', 'World', 'x'], solve: (s) => s.charAt(0).toUpperCase() + s.slice(1) },
  { task: 'Read two positive integers a and b and print the quotient and the remainder of a divided by b, separated by a space.', inputs: ['17 5', '20 4', '3 7'], solve: (s) => `${Math.floor(ints(s)[0] / ints(s)[1])} ${ints(s)[0] % ints(s)[1]}` },
  { task: 'Read an integer n and print the multiplication table of n from 1 to 5, one line each as "n x i = p".', inputs: ['2', '7'], solve: (s) => Array.from({ length: 5 }, (_, i) => `${ints(s)[0]} x ${i + 1} = ${ints(s)[0] * (i + 1)}`).join('\n') },
  { task: 'Read a line of positive integers and print their average, rounded down to an integer.', inputs: ['1 2 3', '10 20', '5', '1 2'], solve: (s) => `${Math.floor(ints(s).reduce((a, b) => a + b, 0) / ints(s).length)}` },
];

export function codeProblems(): { prompt: string; language: string; tests: { input: string; output: string }[] }[] {
  return CODE.map((c, i) => {
    // Two in three in Python, the rest in JavaScript: both sandboxes get problems.
    const language = i % 3 === 2 ? 'javascript' : 'python';
    const name = language === 'python' ? 'Python' : 'JavaScript (Node.js)';
    return {
      prompt: `Write a ${name} program. ${c.task} Read from standard input and write to standard output.`,
      language,
      tests: c.inputs.map((input) => ({ input: input + '\n', output: c.solve(input) + '\n' })),
    };
  });
}

