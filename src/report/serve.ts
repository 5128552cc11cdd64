// `r1 serve`: the runs folder over HTTP on this machine, with pages rendered fresh on every request
// and pushed updates. The server looks at the files runs write (metrics.jsonl, samples.jsonl,
// eval.json, manifest.json) twice a second while a page is open, and tells open pages which folder
// changed through server-sent events; a page of that folder fetches itself again and swaps its body.
// Polling file sizes and times is used rather than fs.watch, whose recursive mode is not dependable
// on every platform and file system; it costs a few stat calls per folder.
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, extname, join, relative, resolve, sep } from 'node:path';
import { esc, stageDirs, WATCHED_FILES } from './common.ts';
import { crumbs, page } from './html.ts';
import { renderComparePage, renderRunPage, renderSamplesPage, renderStagePage, stageCards } from './pages.ts';

export type ServeOptions = { port?: number; host?: string; pollMs?: number };
export type RunningServer = { url: string; server: Server; close: () => Promise<void> };

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.jsonl': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.yaml': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.csv': 'text/plain; charset=utf-8',
};
/** Folders never scanned for changes: weights and tokenizers are large and pages do not show them. */
const SKIP = /^(checkpoint.*|tokenizer|node_modules|\..*)$/;

/** A run folder: the pipeline wrote a manifest, or it has stage folders. */
export const isRunDir = (dir: string) => existsSync(join(dir, 'manifest.json')) || stageDirs(dir).length > 0;

/** Run folders under root (root itself when it is one), up to three levels down (runs/test/<name>). */
export function findRuns(root: string, depth = 3): string[] {
  if (isRunDir(root)) return [root];
  if (depth === 0) return [];
  let names: string[] = [];
  try {
    names = readdirSync(root).filter((n) => !SKIP.test(n) && statSync(join(root, n)).isDirectory());
  } catch {
    return [];
  }
  return names.sort().flatMap((n) => findRuns(join(root, n), depth - 1));
}

/** The folders' watched files' sizes and times, as one comparable string per folder. */
function signatures(root: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const run of findRuns(root)) {
    for (const dir of [run, ...stageDirs(run).map((s) => join(run, s))]) {
      const sig = WATCHED_FILES.map((f) => {
        try {
          const s = statSync(join(dir, f));
          return `${s.size}:${s.mtimeMs}`;
        } catch {
          return '-';
        }
      }).join(',');
      out.set(dir, sig);
    }
  }
  return out;
}

const urlPath = (root: string, dir: string) => relative(root, dir).split(sep).filter(Boolean).map(encodeURIComponent).join('/');

/** The root page: every run with its stages at a glance, and boxes to pick runs to overlay. */
function runsPage(root: string, live: boolean): string {
  const runs = findRuns(root);
  const rows = runs.map((run) => {
    const href = urlPath(root, run);
    const cards = stageCards(run);
    const stages = cards.map((c) => `${esc(c.name)} <span class="badge ${c.status}">${c.status}</span>`).join(' → ');
    return `<tr><td><input type="checkbox" name="runs" value="${esc(href)}" form="cmp"></td><td><a href="${href ? `${esc(href)}/` : ''}index.html">${esc(href || basename(root))}</a></td><td>${stages}</td></tr>`;
  });
  const main = [
    `<h1>Runs in ${esc(basename(resolve(root)))}</h1>`,
    runs.length
      ? `<table><tr><th></th><th>run</th><th>stages</th></tr>${rows.join('')}</table>`
      : '<p class="empty">No run folder here yet.</p>',
    '<form id="cmp" action="/__r1/compare"><p><button>overlay the checked runs</button></p></form>',
  ].join('\n');
  return page({ title: 'r1kit runs', nav: crumbs([['runs', null]]), main, data: { page: 'runs', live } });
}

/** Serve `root` (a runs folder or one run folder). Port 0 picks a free one. */
export async function serveRuns(root: string, opts: ServeOptions = {}): Promise<RunningServer> {
  const base = resolve(root);
  const clients = new Set<ServerResponse>();
  let last = new Map<string, string>();
  let timer: NodeJS.Timeout | null = null;

  const poll = () => {
    const now = signatures(base);
    for (const [dir, sig] of now) {
      if (last.get(dir) === sig) continue;
      const msg = `data: ${JSON.stringify({ dir: urlPath(base, dir) })}\n\n`;
      for (const c of clients) c.write(msg);
    }
    last = now;
  };
  const startPolling = () => {
    if (timer) return;
    last = signatures(base);
    timer = setInterval(poll, opts.pollMs ?? 500);
  };

  const send = (res: ServerResponse, status: number, body: string, type = 'text/html; charset=utf-8') => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/favicon.ico') return void res.writeHead(204).end();
    if (url.pathname === '/__r1/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(': connected\n\n');
      clients.add(res);
      startPolling();
      req.on('close', () => {
        clients.delete(res);
        if (!clients.size && timer) {
          clearInterval(timer);
          timer = null;
        }
      });
      return;
    }
    if (url.pathname === '/__r1/compare') {
      const picked = url.searchParams
        .getAll('runs')
        .map((r) => resolve(base, r))
        .filter((d) => d.startsWith(base) && isRunDir(d));
      if (picked.length === 0) return send(res, 400, 'pick at least one run');
      const hrefs = picked.map((d) => `/${urlPath(base, d)}${urlPath(base, d) ? '/' : ''}`);
      return send(res, 200, renderComparePage(picked, { live: true, hrefs }));
    }
    let file: string;
    try {
      file = resolve(base, '.' + decodeURIComponent(url.pathname));
    } catch {
      return send(res, 400, 'bad path');
    }
    if (file !== base && !file.startsWith(base + sep)) return send(res, 403, 'outside the served folder');
    const isDir = existsSync(file) && statSync(file).isDirectory();
    if (isDir && !url.pathname.endsWith('/')) {
      res.writeHead(302, { location: `${url.pathname}/` });
      return void res.end();
    }
    const dir = isDir ? file : resolve(file, '..');
    const name = isDir ? 'index.html' : basename(file);
    try {
      if (name === 'index.html' && isRunDir(dir)) return send(res, 200, renderRunPage(dir, { live: true }));
      if (name === 'index.html' && dir === base) return send(res, 200, runsPage(base, true));
      const runDir = resolve(dir, '..');
      if ((name === 'report.html' || name === 'samples.html') && stageDirs(runDir).includes(basename(dir))) {
        return send(res, 200, name === 'report.html' ? renderStagePage(dir, { live: true }) : renderSamplesPage(dir, { live: true }));
      }
    } catch (e) {
      return send(res, 500, `<pre>${esc((e as Error).stack ?? String(e))}</pre>`);
    }
    if (!existsSync(file) || isDir) return send(res, 404, 'not found', 'text/plain');
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    createReadStream(file).pipe(res);
  };

  const server = createServer(handle);
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 8765, opts.host ?? '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}/`,
    server,
    close: () =>
      new Promise<void>((ok) => {
        if (timer) clearInterval(timer);
        for (const c of clients) c.end();
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
