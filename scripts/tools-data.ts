// Writes data/tools/: the data of the tools recipe (recipes/grpo-tools-tiny.yaml), deterministic
// (same seed, same bytes). Run with
//   npx tsx scripts/tools-data.ts [outDir]
//
// The task is products of two 3-digit numbers (src/data/products.ts), which the tiny model cannot
// compute in its head but can by calling Python. The corpus is the sums corpus of data/corpus.jsonl
// (scripts/make-data.ts, same generators and shares) with a small share of its arithmetic statements
// replaced by tool-call traces: a product question (User: ... Assistant:), and a reply that calls
// `print(a * b)` in <code>, sees <output>, and answers, in the full form in only some of them. Nothing
// else changes. tests/data-tools.test.ts checks the files are what this writes.
import { mkdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonl } from '../src/data/io.ts';
import { Rng } from '../src/engine/rng.ts';
import { distinctProducts, makeProduct, productKey, productRow, toolTraceDoc } from '../src/data/products.ts';
import { distinctProblems, factKey } from '../src/data/tasks.ts';
import { OPERANDS, SEED as SUMS_SEED, corpus, moreTurns } from './make-data.ts';

const SEED = 20250301;
export const TOOLS_COUNTS = { train: 1000, test: 50, corpus: 14000 };
/** Share of corpus documents that are tool-call traces (taken from the arithmetic statements). */
export const TRACE_SHARE = 0.2;

/** Every file of data/tools as [name, rows]. */
export function makeToolsData(seed = SEED): [string, unknown[]][] {
  const test = distinctProducts(seed + 1, TOOLS_COUNTS.test);
  const held = new Set(test.map(productKey));
  const train = distinctProducts(seed + 2, TOOLS_COUNTS.train, held);
  // The sums corpus keeps its own held-out sums (data/sums-test.jsonl) out, as data/corpus.jsonl does.
  const heldSums = new Set(distinctProblems(SUMS_SEED + 1, 20, OPERANDS, new Set(), factKey).map(factKey));
  const rng = new Rng(seed);
  const trace = () => {
    let p = makeProduct(rng);
    while (held.has(productKey(p))) p = makeProduct(rng);
    return toolTraceDoc(rng, p, () => moreTurns(rng, heldSums));
  };
  return [
    ['train.jsonl', train.map(productRow)],
    ['test.jsonl', test.map(productRow)],
    ['corpus.jsonl', corpus(rng, heldSums, { share: TRACE_SHARE, doc: trace }, TOOLS_COUNTS.corpus)],
  ];
}

function main(outDir: string): void {
  mkdirSync(outDir, { recursive: true });
  for (const [name, rows] of makeToolsData()) {
    writeJsonl(join(outDir, name), rows);
    process.stdout.write(`${name}: ${rows.length} rows\n`);
  }
}

if (process.argv[1] && import.meta.filename === realpathSync(process.argv[1])) {
  main(process.argv[2] ?? join(import.meta.dirname, '..', 'data', 'tools'));
}
