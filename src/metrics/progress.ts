// Progress of a stage: a live bar on a terminal, and one plain line every N steps (and at the
// last step) in CI or a pipe, where a redrawn bar would only make noise.
import cliProgress from 'cli-progress';

export type ProgressOptions = {
  stage: string;
  total: number;
  /** Where to draw; default stderr, so stdout stays clean for data. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Plain mode: print every this many steps (and the last). */
  everySteps?: number;
  /** Step the stage resumes from, so rates and ETA count only this run's steps. */
  startStep?: number;
  now?: () => number;
  /** The metrics shown, in order (default: the loss). An RL stage shows reward, accuracy, KL and
   * length: its loss hovers near 0 whether it learns or not. */
  fields?: readonly ProgressField[];
};

/** A metric on the progress line: its key in the step's metrics, its label, its decimals. */
export type ProgressField = { key: string; label: string; digits: number };

export const LOSS_FIELD: ProgressField = { key: 'loss', label: 'loss', digits: 4 };

export type ProgressMetrics = { loss?: number | null; tokens_per_s?: number | null; [name: string]: unknown };

export class Progress {
  private readonly bar: cliProgress.SingleBar | null;
  private readonly stream: NodeJS.WritableStream;
  private readonly every: number;
  private readonly start: number;
  private readonly startStep: number;
  private readonly now: () => number;
  private lastPrinted = -1;
  private stopped = false;
  private readonly fields: readonly ProgressField[];

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.every = Math.max(1, opts.everySteps ?? 10);
    this.startStep = opts.startStep ?? 0;
    this.now = opts.now ?? Date.now;
    this.start = this.now();
    this.fields = opts.fields ?? [LOSS_FIELD];
    const shown = this.fields.map((f, i) => `${f.label} {f${i}}`).join(' | ');
    const tty = (opts.stream ?? process.stderr).isTTY === true;
    this.bar = tty
      ? new cliProgress.SingleBar(
          {
            stream: this.stream,
            format: `${opts.stage} |{bar}| {value}/{total} | ${shown} | {tps} tok/s | ETA {eta_formatted}`,
            barsize: 24,
            hideCursor: true,
            etaBuffer: 50,
          },
          cliProgress.Presets.shades_classic,
        )
      : null;
    this.bar?.start(opts.total, this.startStep, { ...Object.fromEntries(this.fields.map((_, i) => [`f${i}`, '-'])), tps: '-' });
  }

  /** Record that `step` (1-based, out of total) is done. */
  update(step: number, metrics: ProgressMetrics = {}): void {
    if (this.stopped) return;
    const values = this.fields.map((f) => fmt(metrics[f.key], f.digits));
    const tps = fmt(metrics.tokens_per_s, 0);
    if (this.bar) {
      this.bar.update(step, { ...Object.fromEntries(values.map((v, i) => [`f${i}`, v])), tps });
      return;
    }
    if (step % this.every !== 0 && step !== this.opts.total) return;
    if (step === this.lastPrinted) return;
    this.lastPrinted = step;
    this.stream.write(this.line(step, this.fields.map((f, i) => `${f.label} ${values[i]}`).join(' | '), tps) + '\n');
  }

  /** One plain progress line: stage, step/total, the shown metrics, tokens/s, elapsed and ETA. */
  line(step: number, shown: string, tps: string): string {
    const { stage, total } = this.opts;
    const elapsed = (this.now() - this.start) / 1000;
    const done = step - this.startStep;
    const eta = done > 0 ? (elapsed / done) * Math.max(0, total - step) : NaN;
    const pct = total > 0 ? Math.floor((100 * step) / total) : 100;
    return `[${stage}] step ${step}/${total} (${pct}%) ${shown} | ${tps} tok/s | elapsed ${formatDuration(elapsed)} | eta ${formatDuration(eta)}`;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.bar?.stop();
  }
}

function fmt(v: unknown, digits: number): string {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '-';
}

/** 75 -> "1m15s"; 3725 -> "1h02m"; NaN -> "?". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
