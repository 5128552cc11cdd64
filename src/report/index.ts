// Reports of run folders, one import away: the HTML pages (pages.ts), the inline-SVG plots
// (plot.ts), the live server (serve.ts) and the README results block (results.ts).
export { writeReport, writeRunReport, stageDirs, svgPlot } from './plot.ts';
export { renderRunPage, renderStagePage, renderSamplesPage, renderComparePage, writeRunPages, writeStagePages } from './pages.ts';
export { stageView } from './charts.ts';
export type { Chart, ChartSeries, StageView } from './charts.ts';
export { serveRuns } from './serve.ts';
export {
  writeResults,
  resultsTable,
  breakdownTable,
  resultsMarkdown,
  spliceResults,
  collectEvals,
  collectGrpo,
  RESULTS_START,
  RESULTS_END,
} from './results.ts';
export type { EvalEntry, GrpoEntry } from './results.ts';
