// metrics.jsonl: one JSON object per logged step, appended and flushed line by line, so a killed
// process loses at most its last line. Names follow TRL's logs (loss, learning_rate, grad_norm,
// reward, reward_std, rewards/<fn>/mean, kl, clip_ratio, entropy, completions/mean_length, ...).
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { writeFileAtomic } from '../files.ts';
import { dirname } from 'node:path';

export type MetricValue = number | string | boolean | null;
export type MetricRow = { step: number; [name: string]: MetricValue | undefined };
export type LoggedRow = { step: number; [name: string]: MetricValue };

export type LoggerOptions = {
  /** Resuming from a checkpoint at this step: rows logged after it are dropped, since they will be redone. */
  resumeStep?: number;
  /** Clock in milliseconds (tests pass a fake one). */
  now?: () => number;
};

/** Rows of a metrics.jsonl file. A truncated or garbled last line (a killed writer) is ignored. */
export function readMetrics(file: string): LoggedRow[] {
  if (!existsSync(file)) return [];
  return parseJsonLines<LoggedRow>(readFileSync(file, 'utf8'), file).filter((r) => typeof r.step === 'number');
}

/** Parse JSON Lines, ignoring blank lines and a broken last line; a broken line elsewhere is an error. */
export function parseJsonLines<T>(text: string, file = '<jsonl>'): T[] {
  const lines = text.split('\n');
  const rows: T[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      rows.push(JSON.parse(line) as T);
    } catch (err) {
      const last = lines.slice(i + 1).every((l) => l.trim() === '');
      if (!last) throw new Error(`${file}:${i + 1}: not valid JSON: ${(err as Error).message}`);
    }
  });
  return rows;
}

export class MetricsLogger {
  private fd: number;
  private readonly now: () => number;
  private readonly start: number;
  private readonly elapsedBefore: number;
  private lastTime: number;
  private lastTokens: number | null;

  constructor(
    readonly file: string,
    opts: LoggerOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    mkdirSync(dirname(file), { recursive: true });
    // Keep what an earlier (possibly killed) run logged up to the resume point; drop a torn last line.
    const kept = readMetrics(file).filter((r) => opts.resumeStep === undefined || r.step <= opts.resumeStep);
    if (existsSync(file)) {
      writeFileAtomic(file, [kept.map((r) => JSON.stringify(r) + '\n').join('')]);
    }
    const last = kept.at(-1);
    this.elapsedBefore = typeof last?.elapsed_s === 'number' ? last.elapsed_s : 0;
    this.lastTokens = typeof last?.num_tokens === 'number' ? last.num_tokens : null;
    this.start = this.lastTime = this.now();
    this.fd = openSync(file, 'a');
  }

  /** Append one row. Adds elapsed_s, and tokens_per_s when the row has a cumulative num_tokens. */
  log(row: MetricRow): LoggedRow {
    const t = this.now();
    const out: LoggedRow = { step: row.step };
    for (const [k, v] of Object.entries(row))
      if (v !== undefined && k !== 'step') out[k] = typeof v === 'number' && !Number.isFinite(v) ? null : v;
    if (typeof row.num_tokens === 'number' && row.tokens_per_s === undefined) {
      const dt = (t - this.lastTime) / 1000;
      const tokens = row.num_tokens - (this.lastTokens ?? 0);
      out.tokens_per_s = dt > 0 ? round(tokens / dt, 1) : null;
      this.lastTokens = row.num_tokens;
    }
    out.elapsed_s = round(this.elapsedBefore + (t - this.start) / 1000, 3);
    this.lastTime = t;
    if (this.fd < 0) throw new Error(`metrics logger for ${this.file} is closed`);
    writeSync(this.fd, JSON.stringify(out) + '\n');
    return out;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;
