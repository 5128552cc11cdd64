// Metrics: the JSONL logger, progress display, the report pages (src/report/) and the README results block.
export { MetricsLogger, readMetrics, parseJsonLines } from './logger.ts';
export type { MetricRow, LoggedRow, MetricValue, LoggerOptions } from './logger.ts';
export { Progress, formatDuration } from './progress.ts';
export type { ProgressOptions, ProgressMetrics } from './progress.ts';
export { writeReport, writeRunReport, stageDirs, svgPlot } from './report.ts';
export { renderRunPage, renderStagePage, renderSamplesPage, renderComparePage, writeRunPages, writeStagePages } from '../report/pages.ts';
export { stageView } from '../report/charts.ts';
export type { Chart, ChartSeries, StageView } from '../report/charts.ts';
export { serveRuns } from '../report/serve.ts';
export { writeResults, resultsTable, breakdownTable, resultsMarkdown, spliceResults, collectEvals, collectGrpo, RESULTS_START, RESULTS_END } from './results.ts';
export type { EvalEntry, GrpoEntry } from './results.ts';
