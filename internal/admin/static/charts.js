// Line charts as inline SVG, built element by element (no library, no
// markup from strings). Each series' values are also kept on its line as
// data-values, so that tests and curious operators can read what is drawn.

import { h, svg } from './dom.js';

// The drawing's size in SVG units; it scales to its box, so a narrow
// chart asks for a smaller drawing to keep its labels readable.
const wide = { width: 720, height: 200 };
const pad = { top: 12, right: 12, bottom: 26, left: 44 };

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten, so the
// axis labels read well; never below 1.
function niceMax(v) {
  if (v <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) {
    if (v <= m * p) return m * p;
  }
  return 10 * p;
}

function clock(d) {
  return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

// lineChart draws series [{name, label, values}] over times (Date per
// point). opts: id, title, size ({width, height}, default 720×200) and legend: 'sum' (default: the window's
// total of each series) or 'last' (its latest value, for levels).
export function lineChart(times, series, opts) {
  const { width, height } = opts.size || wide;
  const n = times.length;
  const shown = (s) => (opts.legend === 'last' ? (s.values.length ? s.values[s.values.length - 1] : 0)
    : s.values.reduce((a, b) => a + b, 0));
  const top = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const x = (i) => pad.left + (n <= 1 ? plotW : (plotW * i) / (n - 1));
  const y = (v) => pad.top + plotH - (plotH * v) / top;

  const root = svg('svg', {
    id: opts.id, class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': `${opts.title}: ${series.map((s) => `${s.label} ${shown(s)}`).join(', ')}`,
    'data-max': top,
  });
  root.appendChild(svg('title', {}, opts.title));
  for (const frac of [0, 0.5, 1]) {
    const v = top * frac;
    root.appendChild(svg('line', { class: 'grid', x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v) }));
    root.appendChild(svg('text', { class: 'axis', x: pad.left - 6, y: y(v) + 4, 'text-anchor': 'end' },
      Number.isInteger(v) ? String(v) : v.toFixed(1)));
  }
  if (n > 0) {
    for (const i of [0, Math.floor((n - 1) / 2), n - 1]) {
      const anchor = i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle';
      root.appendChild(svg('text', { class: 'axis', x: x(i), y: height - 8, 'text-anchor': anchor }, clock(times[i])));
    }
  }
  for (const s of series) {
    const points = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    root.appendChild(svg('polyline', {
      class: `series ${s.name}`, points, 'data-series': s.name, 'data-values': s.values.join(','),
    }));
    // A lone point draws no line: mark each non-zero value with a dot.
    s.values.forEach((v, i) => {
      if (v > 0) root.appendChild(svg('circle', { class: `dot ${s.name}`, cx: x(i), cy: y(v), r: 2.5 },
        svg('title', {}, `${s.label} ${v} at ${clock(times[i])}`)));
    });
  }
  const legend = h('ul', { class: 'legend' }, series.map((s) =>
    h('li', {}, h('span', { class: `swatch ${s.name}` }), `${s.label} `,
      h('strong', {}, String(shown(s))))));
  return h('figure', { class: 'chart-wrap' }, root, legend);
}
