// Metrics: the JSONL logger, progress display, the HTML report and the README results block.
export { MetricsLogger, readMetrics, parseJsonLines } from './logger.ts';
export type { MetricRow, LoggedRow, MetricValue, LoggerOptions } from './logger.ts';
export { Progress, formatDuration } from './progress.ts';
export type { ProgressOptions, ProgressMetrics } from './progress.ts';
export { writeReport, writeRunReport, renderReport, stageDirs, svgPlot, numericMetrics } from './report.ts';
export type { ReportInput } from './report.ts';
export { writeResults, resultsTable, breakdownTable, resultsMarkdown, spliceResults, collectEvals, collectGrpo, RESULTS_START, RESULTS_END } from './results.ts';
export type { EvalEntry, GrpoEntry } from './results.ts';
