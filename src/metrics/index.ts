// Metrics: the JSONL logger and the progress display. The pages, plots and README results block
// drawn from the logged rows are src/report/ (report/index.ts), which reads metrics, never the reverse.
export { MetricsLogger, readMetrics, parseJsonLines } from './logger.ts';
export type { MetricRow, LoggedRow, MetricValue, LoggerOptions } from './logger.ts';
export { Progress, formatDuration } from './progress.ts';
export { processMemory } from './memory.ts';
export type { ProgressOptions, ProgressMetrics } from './progress.ts';
