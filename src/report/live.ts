// Pages kept fresh while `r1 run` trains: the stage's pages and the run's index are rewritten every
// few logged steps and when the stage ends, so a page opened from disk (it reloads itself while its
// stage runs) or served by `r1 serve` follows the run. A stage's work happens between awaits, so the
// check runs on a timer that fires whenever the stage yields; it only stats metrics.jsonl unless it grew.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeAtomic } from './common.ts';
import { renderRunPage, writeStagePages } from './pages.ts';

export type LiveReports = { refresh: () => void; stop: () => void };

/** Default: pages rewritten every 10 logged steps, at most every 2 s (rendering reads samples.jsonl). */
export function liveReports(
  runDir: string,
  stageDir: string,
  log: (line: string) => void,
  opts: { everySteps?: number; minIntervalMs?: number; checkMs?: number } = {},
): LiveReports {
  const every = opts.everySteps ?? 10,
    minInterval = opts.minIntervalMs ?? 2000;
  let size = -1,
    lastStep = 0,
    lastWrite = 0,
    warned = false;
  const refresh = () => {
    try {
      // At the start of a stage its folder may not exist yet: the run's page comes first.
      if (existsSync(stageDir)) writeStagePages(stageDir);
      writeAtomic(join(runDir, 'index.html'), renderRunPage(runDir));
      lastWrite = Date.now();
    } catch (e) {
      // A report is never worth stopping a run for; say it once.
      if (!warned) log(`[report] pages not written: ${(e as Error).message}`);
      warned = true;
    }
  };
  const file = join(stageDir, 'metrics.jsonl');
  /** The step of the last logged row; null when the file has not changed since the last look. */
  const newStep = (): number | null => {
    let now: number;
    try {
      now = statSync(file).size;
    } catch {
      return null;
    }
    if (now === size) return null;
    size = now;
    const text = readFileSync(file, 'utf8');
    const tail = text.slice(text.lastIndexOf('\n', text.length - 2) + 1);
    const step = Number(/"step":\s*(\d+)/.exec(tail)?.[1] ?? NaN);
    return Number.isFinite(step) ? step : null;
  };
  const check = () => {
    const step = newStep();
    if (step !== null && step - lastStep >= every && Date.now() - lastWrite >= minInterval) {
      lastStep = step;
      refresh();
    }
  };
  // A resumed stage starts from the steps it logged before.
  lastStep = newStep() ?? 0;
  refresh();
  const timer = setInterval(check, opts.checkMs ?? 1000);
  timer.unref();
  return { refresh, stop: () => clearInterval(timer) };
}
