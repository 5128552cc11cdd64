// The script of every report page (inlined by html.ts after uPlot). It draws the charts described in
// the page's JSON data, runs the samples browser, and, on a page served by `r1 serve`, listens for
// changes and swaps in the fresh page body without a reload, so filters and scroll stay where they are.
// Plain browser JavaScript with no build step: it is inlined as written.
(function () {
  'use strict';
  const state = { data: null, plots: new Map(), updates: 0, limit: 200 };
  window.r1 = state;

  const fmt = (v) => {
    if (v === null || v === undefined || !Number.isFinite(v)) return '–';
    const a = Math.abs(v);
    if (Number.isInteger(v) && a < 1e6) return String(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(2) : String(Number(v.toPrecision(4)));
  };
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  const alpha = (hex, a) => {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
  };

  // ---- charts -------------------------------------------------------------------------------
  // A value axis as wide as its longest tick label (measured in the axis's font), so a label such as
  // 5.00e-4 is never cut off at the chart's edge. uPlot asks on each of its (at most 3) layout passes
  // with that pass's labels; the answer always fits the labels it is given, so the last pass's do.
  function axisWidth(u, values, axisIdx) {
    const axis = u.axes[axisIdx];
    let width = (axis.ticks && axis.ticks.show !== false ? axis.ticks.size : 0) + (axis.gap || 0) + 6;
    const longest = (values || []).reduce((a, v) => (String(v).length > a.length ? String(v) : a), '');
    if (longest) {
      u.ctx.font = axis.font[0];
      width += u.ctx.measureText(longest).width / (window.devicePixelRatio || 1);
    }
    return Math.max(40, Math.ceil(width));
  }
  // Steps are whole numbers: the step axis ticks at 1, 2, 5, 10, ... apart, never at 1.5.
  const STEP_INCRS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000, 100000];
  // A value range for a metric that never moves (a reward at 0 for every step): the line near the
  // bottom of a small range ([0, 1] for 0), not in the middle of uPlot's [-100, 100]-style default.
  function valueRange(u, min, max) {
    if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
    if (min !== max) return uPlot.rangeNum(min, max, 0.1, true);
    if (min === 0) return [0, 1];
    const pad = Math.abs(min) / 2;
    return [min - pad, min + pad];
  }
  function drawCharts(charts) {
    for (const p of state.plots.values()) p.destroy();
    state.plots.clear();
    for (const spec of charts || []) {
      const box = document.querySelector(`[data-chart="${CSS.escape(spec.id)}"] .plot`);
      if (!box) continue;
      const right = spec.series.some((s) => s.right);
      const opts = {
        width: Math.max(300, box.clientWidth || 440),
        height: 220,
        scales: { x: { time: false }, y: { range: valueRange } },
        legend: { live: true },
        cursor: { drag: { x: true, y: false } },
        series: [
          { label: 'step' },
          ...spec.series.map((s) => ({
            label: s.label,
            stroke: s.faint ? alpha(s.color, 0.28) : s.color,
            width: s.width || 1.5,
            dash: s.dash || undefined,
            scale: s.right ? 'y2' : 'y',
            spanGaps: true,
            value: (u, v) => fmt(v),
          })),
        ],
        axes: [
          { label: 'step', size: 36, incrs: STEP_INCRS },
          { size: axisWidth, values: (u, vals) => vals.map(fmt) },
          ...(right
            ? [
                {
                  scale: 'y2',
                  side: 1,
                  size: axisWidth,
                  grid: { show: false },
                  values: (u, vals) => vals.map(fmt),
                  label: spec.rightLabel || '',
                },
              ]
            : []),
        ],
        bands: (spec.bands || []).map((b) => ({ series: [b.upper + 1, b.lower + 1], fill: b.color })),
      };
      if (right) opts.scales.y2 = { range: valueRange };
      const plot = new uPlot(opts, [spec.x, ...spec.series.map((s) => s.values)], box);
      // Series marked quiet (raw lines under their average, a band's edges) stay out of the legend.
      const legend = plot.root.querySelectorAll('.u-legend .u-series');
      spec.series.forEach((s, i) => {
        if (s.quiet && legend[i + 1]) legend[i + 1].style.display = 'none';
      });
      box.parentElement.dataset.points = String(spec.x.length);
      state.plots.set(spec.id, plot);
    }
  }
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const p of state.plots.values()) p.setSize({ width: Math.max(300, p.root.parentElement.clientWidth), height: 220 });
    }, 150);
  });

  // ---- samples browser -------------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);
  function ranges(s) {
    const out = { reward: [Infinity, -Infinity] };
    for (const f of s.fns) out[f] = [Infinity, -Infinity];
    const see = (k, v) => {
      if (v === null || v === undefined) return;
      out[k][0] = Math.min(out[k][0], v);
      out[k][1] = Math.max(out[k][1], v);
    };
    for (const r of s.rows) {
      see('reward', r.reward);
      for (const f of s.fns) see(f, r.rewards[f]);
    }
    return out;
  }
  function chip(label, v, range) {
    if (v === null || v === undefined) return `<span class="r" title="${esc(label)}: not applicable">${esc(label)} –</span>`;
    const t = range && range[1] > range[0] ? (v - range[0]) / (range[1] - range[0]) : 0.5;
    return `<span class="r" style="background:hsl(${Math.round(120 * t)},70%,84%)" title="${esc(label)}">${esc(label)} ${fmt(v)}</span>`;
  }
  function filters() {
    const num = (id) => ($(id).value.trim() === '' ? null : Number($(id).value));
    return {
      step: $('f-step').value,
      min: num('f-min'),
      max: num('f-max'),
      finish: $('f-finish').value,
      text: $('f-text').value.trim().toLowerCase(),
      groups: $('f-groups').checked,
    };
  }
  function passes(r, f, s) {
    if (f.step !== '' && String(r.step) !== f.step) return false;
    if (f.min !== null && !(r.reward !== null && r.reward >= f.min)) return false;
    if (f.max !== null && !(r.reward !== null && r.reward <= f.max)) return false;
    if (f.finish && r.finish !== f.finish) return false;
    if (f.text && !r.completion.toLowerCase().includes(f.text) && !s.prompts[r.p].toLowerCase().includes(f.text)) return false;
    return true;
  }
  // A prompt as the reader wants it: the question in full, first; the whole prompt the model saw (the
  // template around the question) folded under it. Without a known question, the prompt's end is what
  // differs between rows, so that is shown.
  function promptHtml(s, p) {
    const full = s.prompts[p];
    const q = s.questions ? s.questions[p] : null;
    const shown = q !== null && q !== undefined ? q : full.length > 400 ? '…' + full.slice(-400) : full;
    const fold =
      (q !== null && q !== undefined) || full.length > 400
        ? `<details class="template"><summary>${q !== null && q !== undefined ? 'with the template' : 'whole prompt'} (${full.length} chars)</summary><pre>${esc(full)}</pre></details>`
        : '';
    return `<pre class="question">${esc(shown)}</pre>${fold}`;
  }
  // A completion with tool calls, as turns: what the model wrote, the call it ended with (as the model
  // wrote it, named by its tool), what the tool printed and its error, each a block of its own.
  function turnHtml(t) {
    let text = t.text;
    let written = '';
    if (t.call) {
      const at = Math.max(text.lastIndexOf('<code'), text.lastIndexOf('<tool_call>'));
      if (at >= 0) {
        written = text.slice(at);
        text = text.slice(0, at);
      }
    }
    let html = text.trim() ? `<pre class="turn-text">${esc(text)}</pre>` : '';
    if (t.call) {
      const c = t.call;
      html += `<div class="turn-call"><span class="turn-label">call${c.tool ? ' · ' + esc(c.tool) : ''}</span><pre>${esc(written || c.code)}</pre></div>`;
      if (c.output || !c.error)
        html += `<div class="turn-output"><span class="turn-label">output</span><pre>${c.output ? esc(c.output) : '(nothing printed)'}</pre></div>`;
      if (c.error) html += `<div class="turn-error"><span class="turn-label">error</span><pre>${esc(c.error)}</pre></div>`;
    }
    return `<div class="turn">${html}</div>`;
  }
  function completionHtml(r) {
    if (!r.turns) return `<pre>${esc(r.completion)}</pre>`;
    const calls = r.turns.filter((t) => t.call).length;
    const tokens =
      r.modelTokens !== undefined
        ? `<span class="r">model tokens ${r.modelTokens}</span><span class="r">tool tokens ${r.toolTokens ?? '–'}</span>`
        : '';
    return `<div class="turns">${r.turns.map(turnHtml).join('')}</div><div class="turn-sum"><span class="r">${r.turns.length} turn${r.turns.length === 1 ? '' : 's'} · ${calls} call${calls === 1 ? '' : 's'}</span>${tokens}</div>`;
  }
  function rewardCells(r, s, rg) {
    return chip('reward', r.reward, rg.reward) + s.fns.map((f) => chip(f, r.rewards[f], rg[f])).join('');
  }
  function renderSamples() {
    const s = state.data.samples;
    const box = $('r1-samples');
    if (!s || !box) return;
    const sel = $('f-step');
    const keep = sel.value;
    const want = ['', ...s.steps.slice().reverse().map(String)];
    if (sel.options.length !== want.length || [...sel.options].some((o, i) => o.value !== want[i])) {
      sel.innerHTML = want.map((v) => `<option value="${v}">${v === '' ? 'all' : v}</option>`).join('');
      sel.value = want.includes(keep) ? keep : '';
    }
    const f = filters();
    const rg = ranges(s);
    // Latest steps first: what a user watching a run wants to see.
    const order = s.rows.map((r, i) => i).sort((a, b) => (s.rows[b].step ?? 0) - (s.rows[a].step ?? 0) || a - b);
    const hits = order.filter((i) => passes(s.rows[i], f, s));
    let html = '';
    let shown = 0;
    if (f.groups) {
      const groups = new Map();
      for (const i of hits) {
        const r = s.rows[i];
        const key = `${r.step}|${r.p}`;
        if (!groups.has(key)) groups.set(key, []);
        groups.get(key).push(r);
      }
      const list = [...groups.values()];
      for (const g of list.slice(0, state.limit)) {
        const sorted = g.slice().sort((a, b) => (b.reward ?? -Infinity) - (a.reward ?? -Infinity));
        const best = sorted[0],
          worst = sorted[sorted.length - 1];
        const side = (title, r) =>
          `<div><h4>${title} ${chip('reward', r.reward, rg.reward)}</h4>${completionHtml(r)}<div>${s.fns.map((fn) => chip(fn, r.rewards[fn], rg[fn])).join('')}<span class="r">adv ${fmt(r.advantage)}</span><span class="r fin-${esc(r.finish)}">${esc(r.finish ?? '')}</span></div></div>`;
        html += `<div class="group sample-group"><div class="head">${best.step !== null ? `step ${best.step} · ` : ''}${g.length} completions · rewards ${sorted.map((r) => fmt(r.reward)).join(', ')}</div><div class="gp">${promptHtml(s, best.p)}</div><div class="pair">${side('best', best)}${g.length > 1 ? side('worst', worst) : '<div class="empty">one completion only</div>'}</div></div>`;
      }
      shown = Math.min(list.length, state.limit);
      $('r1-count').textContent = `${list.length} groups (${hits.length} of ${s.rows.length} completions)`;
      if (list.length > shown) html += `<button id="r1-more">show more groups</button>`;
    } else {
      const rows = hits.slice(0, state.limit).map((i) => {
        const r = s.rows[i];
        const adv =
          r.advantage === null
            ? '–'
            : `<span class="${r.advantage > 0 ? 'up' : r.advantage < 0 ? 'down' : 'flat'}">${fmt(r.advantage)}</span>`;
        return `<tr class="sample"><td class="num">${r.step ?? ''}</td><td class="prompt">${promptHtml(s, r.p)}</td><td class="completion">${completionHtml(r)}${r.answer !== undefined ? `<div class="r">answer ${esc(r.answer)}</div>` : ''}</td><td>${rewardCells(r, s, rg)}</td><td class="num">${adv}</td><td class="fin-${esc(r.finish)}">${esc(r.finish ?? '')}</td></tr>`;
      });
      shown = rows.length;
      html = `<table class="samples"><tr><th>step</th><th>prompt</th><th>completion</th><th>rewards</th><th>advantage</th><th>finish</th></tr>${rows.join('')}</table>`;
      if (hits.length > shown) html += `<button id="r1-more">show more</button>`;
      $('r1-count').textContent = `${hits.length} of ${s.rows.length} completions${hits.length > shown ? ` (first ${shown} shown)` : ''}`;
    }
    if (!hits.length) html = '<p class="empty">No completion matches the filters.</p>';
    box.innerHTML = html;
    const more = $('r1-more');
    if (more)
      more.onclick = () => {
        state.limit += 200;
        renderSamples();
      };
  }
  function wireSamples() {
    if (!$('r1-controls') || wireSamples.done) return;
    wireSamples.done = true;
    for (const id of ['f-step', 'f-min', 'f-max', 'f-finish', 'f-text', 'f-groups']) {
      $(id).addEventListener('input', () => {
        state.limit = 200;
        renderSamples();
      });
      $(id).addEventListener('change', () => {
        state.limit = 200;
        renderSamples();
      });
    }
  }

  // ---- page ----------------------------------------------------------------------------------
  function render() {
    state.data = JSON.parse($('r1-data').textContent);
    drawCharts(state.data.charts);
    if (state.data.page === 'samples') {
      wireSamples();
      renderSamples();
    }
  }

  // ---- live updates ----------------------------------------------------------------------------
  let busy = false,
    again = false;
  async function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const res = await fetch(location.href, { cache: 'no-store' });
      if (res.ok) {
        const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
        const main = doc.getElementById('r1-main'),
          data = doc.getElementById('r1-data');
        if (main && data) {
          $('r1-main').innerHTML = main.innerHTML;
          $('r1-data').textContent = data.textContent;
          render();
          state.updates++;
          document.dispatchEvent(new Event('r1:updated'));
        }
      }
    } catch (err) {
      console.warn('r1: live update failed', err);
    } finally {
      busy = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }
  function listen() {
    const here = decodeURIComponent(location.pathname.replace(/\/[^/]*$/, ''));
    const everything = state.data.page === 'compare' || state.data.page === 'runs';
    $('r1-live').hidden = false;
    const events = new EventSource('/__r1/events');
    events.onmessage = (e) => {
      const dir = '/' + String(JSON.parse(e.data).dir || '').replace(/^\/+/, '');
      if (everything || here.startsWith(dir) || dir.startsWith(here + '/') || dir === here) refresh();
    };
    events.onerror = () => {
      $('r1-live').textContent = 'reconnecting';
    };
    events.onopen = () => {
      $('r1-live').textContent = 'live';
    };
  }

  render();
  if (state.data.live && 'EventSource' in window) listen();
  // Opened from disk while the stage runs: `r1 run` rewrites the file as it goes, so look again now and then.
  else if (state.data.running && location.protocol === 'file:') setTimeout(() => location.reload(), 20000);
})();
