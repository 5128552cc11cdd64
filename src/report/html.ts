// The shell of every report page: one self-contained HTML file. uPlot (the chart library), its styles,
// the page's own script (client.js) and the page's data (JSON) are all inlined, so a page works when
// opened from disk, copied elsewhere, or offline; nothing is fetched from a CDN.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { esc } from './common.ts';

const require = createRequire(import.meta.url);
let assets: { js: string; css: string; client: string } | null = null;

/** uPlot's minified build and styles (about 53 kB), and the page script; read once per process. */
function pageAssets() {
  assets ??= {
    js: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    client: readFileSync(new URL('./client.js', import.meta.url), 'utf8'),
  };
  return assets;
}

export type PageData = {
  /** Which page: the client script draws charts for all of them and the samples browser for 'samples'. */
  page: 'run' | 'stage' | 'samples' | 'compare' | 'runs';
  /** Served by `r1 serve`: the page listens for changes and updates itself. */
  live?: boolean;
  /** Opened from disk while its stage runs: the page reloads itself now and then. */
  running?: boolean;
  [k: string]: unknown;
};

/** JSON safe inside a <script> element: no "</script>" or "<!--" can end it early. */
export function scriptJson(v: unknown): string {
  return JSON.stringify(v)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** A whole page: `nav` (breadcrumbs) and `main` are HTML; `controls` stays in place when a live page
 * swaps in a fresh `main`, so what the user typed into it survives updates. */
export function page(opts: { title: string; nav?: string; main: string; controls?: string; data: PageData }): string {
  const a = pageAssets();
  return [
    '<!doctype html><html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(opts.title)}</title>`,
    `<style>${a.css}\n${CSS}</style>`,
    '</head><body>',
    `<header><nav>${opts.nav ?? ''}</nav><span id="r1-live" class="live" hidden>live</span></header>`,
    opts.controls ?? '',
    `<main id="r1-main">${opts.main}</main>`,
    `<script type="application/json" id="r1-data">${scriptJson(opts.data)}</script>`,
    `<script>${a.js}</script>`,
    `<script>${a.client}</script>`,
    '</body></html>',
  ].join('\n');
}

/** Breadcrumbs: [label, href] pairs, the last one the current page (no link). */
export function crumbs(parts: [string, string | null][]): string {
  return parts
    .map(([label, href]) => (href ? `<a href="${esc(href)}">${esc(label)}</a>` : `<b>${esc(label)}</b>`))
    .join(' <span class="sep">/</span> ');
}

const CSS = `
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg2:#f6f8fa;--good:#1a7f37;--bad:#d1242f;--accent:#1f6feb}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:var(--fg);background:#fff}
header{display:flex;align-items:center;gap:12px;padding:10px 24px;border-bottom:1px solid var(--line);background:var(--bg2)}
header nav{flex:1}header a{color:var(--accent);text-decoration:none}.sep{color:var(--muted)}
.live{background:var(--good);color:#fff;border-radius:10px;padding:1px 8px;font-size:12px}
main,.controls{padding:16px 24px;max-width:1500px}
h1{font-size:22px;margin:4px 0 2px}h2{font-size:16px;margin:28px 0 10px}
.sub{color:var(--muted);margin:0 0 8px}
a{color:var(--accent)}
.pipeline{display:flex;flex-wrap:wrap;align-items:stretch;gap:6px}
.stage{border:1px solid var(--line);border-radius:8px;padding:10px 12px;min-width:170px;flex:0 1 220px;background:#fff;text-decoration:none;color:inherit;display:block}
.stage:hover{border-color:var(--accent)}
.arrow{align-self:center;color:var(--muted);font-size:18px}
.stage .name{font-weight:600}.stage .type{color:var(--muted);font-size:12px}
.stage .big{font-size:24px;font-weight:600;margin-top:6px}.stage .label{color:var(--muted);font-size:12px}
.stage .more{color:var(--muted);font-size:12px}
.badge{display:inline-block;border-radius:10px;padding:0 7px;font-size:11px;font-weight:600;margin-left:4px;vertical-align:1px}
.badge.done{background:#dafbe1;color:var(--good)}.badge.running{background:#ddf4ff;color:var(--accent)}
.badge.pending{background:var(--bg2);color:var(--muted)}
.spark{display:block;margin-top:4px}
table{border-collapse:collapse}td,th{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
th{background:var(--bg2);font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.delta{font-size:12px;margin-left:6px}.up{color:var(--good)}.down{color:var(--bad)}.flat{color:var(--muted)}
tr.group td{background:var(--bg2);font-weight:600}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:14px}
.chart{border:1px solid var(--line);border-radius:8px;padding:8px 10px;min-width:0}
.chart h3{font-size:14px;margin:0 0 4px}.chart .note{color:var(--muted);font-size:12px;margin:2px 0 0}
.chart .plot{min-height:230px}
.numbers{display:flex;flex-wrap:wrap;gap:8px}
.number{border:1px solid var(--line);border-radius:8px;padding:6px 10px}.number b{font-size:16px}.number div{color:var(--muted);font-size:12px}
.controls{display:flex;flex-wrap:wrap;gap:10px;align-items:center;border-bottom:1px solid var(--line)}
.controls label{color:var(--muted);font-size:13px}.controls input,.controls select{font:inherit;padding:2px 6px}
.controls input[type=number]{width:80px}.controls input[type=search]{width:260px}
#r1-count{color:var(--muted)}
table.samples{width:100%}table.samples td{font-size:13px}
pre{margin:0;white-space:pre-wrap;word-break:break-word;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
td.prompt{min-width:240px;max-width:420px}td.completion{min-width:320px}
.question{font:13px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;white-space:pre-wrap;word-break:break-word;margin:0;max-height:12em;overflow:auto}
details.template summary{color:var(--muted);font-size:12px;cursor:pointer}details.template pre{color:var(--muted);max-height:10em;overflow:auto}
.r{display:inline-block;border-radius:4px;padding:0 5px;margin:1px 3px 1px 0;font-size:12px;white-space:nowrap;font-variant-numeric:tabular-nums}
.fin-length{color:var(--bad)}
.turn{border-left:3px solid var(--line);padding:2px 0 2px 6px;margin:0 0 4px}.turn>div{margin-top:3px;border-radius:4px;padding:2px 6px}
.turn-call{background:#eaf1fb}.turn-output{border:1px dashed var(--line)}.turn-error{border:1px solid var(--bad)}.turn-error pre{color:var(--bad)}
.turn-label{display:block;color:var(--muted);font-size:11px}.turn-sum{margin-top:2px}
.group{border:1px solid var(--line);border-radius:8px;margin:0 0 12px;padding:8px 10px}
.group .head{color:var(--muted);font-size:12px;margin-bottom:6px}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:10px}.pair>div{border-radius:6px;padding:6px 8px;background:var(--bg2)}
.pair h4{margin:0 0 4px;font-size:12px}
button{font:inherit;padding:3px 10px}
.empty{color:var(--muted)}
`;
