// Metrics: the JSONL logger, progress display and the HTML report.
export { MetricsLogger, readMetrics, parseJsonLines } from './logger.ts';
export type { MetricRow, LoggedRow, MetricValue, LoggerOptions } from './logger.ts';
export { Progress, formatDuration } from './progress.ts';
export type { ProgressOptions, ProgressMetrics } from './progress.ts';
export { writeReport, writeRunReport, renderReport, stageDirs, svgPlot, numericMetrics } from './report.ts';
export type { ReportInput } from './report.ts';
