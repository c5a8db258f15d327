// Hand-drawn SVG charts: a trend (bars + line over days) and a share (donut or horizontal bars).
// Values are plain numbers (fen for money); labels are formatted by the caller's functions.
import { h, svg } from './dom.js';
import { L } from './i18n.js';

export const PALETTE = ['#1677ff', '#52c41a', '#faad14', '#eb2f96', '#13c2c2', '#722ed1', '#fa541c', '#2f54eb', '#a0d911', '#8c8c8c'];

// A "nice" upper bound and step for an axis from 0 to max.
function niceScale(max, ticks = 4) {
  if (!(max > 0)) return { top: ticks, step: 1 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  return { top: step * Math.ceil(max / step), step };
}

function empty() {
  return h('div', { class: 'chart-empty', dataset: { chart: 'empty' } }, L('所选期间没有数据', 'No data in this period'));
}

// Trend: labels (x), bars [{name, color, values}] side by side, lines [{name, color, values}] over them.
export function trendChart({ labels, bars = [], lines = [], height = 240, format = String, tickLabel = (x) => x }) {
  const all = [...bars, ...lines].flatMap((s) => s.values);
  if (!labels.length || all.every((v) => !v)) return empty();
  const W = 720;
  const pad = { l: 64, r: 12, t: 12, b: 28 };
  const iw = W - pad.l - pad.r;
  const ih = height - pad.t - pad.b;
  const { top, step } = niceScale(Math.max(...all, 0));
  const y = (v) => pad.t + ih - (ih * v) / top;
  const slot = iw / labels.length;
  const root = svg('svg', { viewBox: `0 0 ${W} ${height}`, class: 'chart', role: 'img', dataset: { chart: 'trend' },
    preserveAspectRatio: 'xMidYMid meet' });
  for (let v = 0; v <= top + step / 2; v += step) {
    root.appendChild(svg('line', { class: 'grid-line', x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v) }));
    root.appendChild(svg('text', { x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, format(Math.round(v))));
  }
  root.appendChild(svg('line', { class: 'axis', x1: pad.l, x2: W - pad.r, y1: y(0), y2: y(0) }));
  const every = Math.max(1, Math.ceil(labels.length / 12));
  labels.forEach((lab, i) => {
    if (i % every === 0 || labels.length <= 12) {
      root.appendChild(svg('text', { x: pad.l + slot * (i + 0.5), y: height - 8, 'text-anchor': 'middle' }, tickLabel(lab)));
    }
  });
  const bw = Math.max(2, Math.min(28, (slot * 0.7) / Math.max(1, bars.length)));
  bars.forEach((s, si) => {
    s.values.forEach((v, i) => {
      const x = pad.l + slot * (i + 0.5) - (bw * bars.length) / 2 + bw * si;
      const hgt = Math.max(0, y(0) - y(v || 0));
      root.appendChild(svg('path', { class: 'bar', fill: s.color,
        d: `M${x.toFixed(1)},${y(0).toFixed(1)}v${(-hgt).toFixed(1)}h${bw.toFixed(1)}v${hgt.toFixed(1)}z` },
      svg('title', null, `${labels[i]} ${s.name}: ${format(v || 0)}`)));
    });
  });
  lines.forEach((s) => {
    const pts = s.values.map((v, i) => [pad.l + slot * (i + 0.5), y(v || 0)]);
    const d = pts.map(([px, py], i) => `${i ? 'L' : 'M'}${px.toFixed(1)},${py.toFixed(1)}`).join('');
    root.appendChild(svg('path', { class: 'line', d, fill: 'none', stroke: s.color, 'stroke-width': 2 }));
    pts.forEach(([px, py], i) => root.appendChild(svg('circle', { cx: px, cy: py, r: 3, fill: '#fff', stroke: s.color,
      'stroke-width': 2 }, svg('title', null, `${labels[i]} ${s.name}: ${format(s.values[i] || 0)}`))));
  });
  const legend = h('div', { class: 'legend' }, [...bars, ...lines].map((s) =>
    h('span', { class: 'item' }, swatch(s.color), s.name)));
  return h('div', null, root, legend);
}

function swatch(color) {
  const sw = h('span', { class: 'sw' });
  sw.style.background = color; // CSSOM from script is allowed by the CSP; inline style attributes are not
  return sw;
}

// A ring segment from angle a0 to a1 (radians, clockwise from 12 o'clock). Drawn as two half arcs
// each way, so that a full circle (one category) still renders.
function arc(cx, cy, r, r0, a0, a1) {
  const m = (a0 + a1) / 2;
  const p = (rad, a) => `${(cx + rad * Math.sin(a)).toFixed(2)},${(cy - rad * Math.cos(a)).toFixed(2)}`;
  return `M${p(r, a0)}A${r},${r} 0 0 1 ${p(r, m)}A${r},${r} 0 0 1 ${p(r, a1)}`
    + `L${p(r0, a1)}A${r0},${r0} 0 0 0 ${p(r0, m)}A${r0},${r0} 0 0 0 ${p(r0, a0)}Z`;
}

// Share as a donut: items [{label, value, sub}] (value drives the angle), centre text, legend with
// the formatted value and percentage.
export function donutChart({ items, format = String, centerLabel = '', centerValue = '' }) {
  const data = items.filter((x) => x.value > 0);
  const total = data.reduce((a, x) => a + x.value, 0);
  if (!total) return empty();
  const S = 160;
  const c = S / 2;
  const root = svg('svg', { viewBox: `0 0 ${S} ${S}`, class: 'chart', role: 'img', dataset: { chart: 'donut' } });
  let a = 0;
  data.forEach((x, i) => {
    const color = x.color || PALETTE[i % PALETTE.length];
    const span = (2 * Math.PI * x.value) / total;
    root.appendChild(svg('path', { class: 'arc', d: arc(c, c, 72, 46, a, a + span), fill: color },
      svg('title', null, `${x.label}: ${format(x.value)} (${pct(x.value, total)})`)));
    a += span;
  });
  root.appendChild(svg('text', { class: 'center-value', x: c, y: c + 2, 'text-anchor': 'middle' }, centerValue));
  root.appendChild(svg('text', { class: 'center-label', x: c, y: c + 20, 'text-anchor': 'middle' }, centerLabel));
  const legend = h('div', { class: 'legend' }, data.map((x, i) => h('span', { class: 'item' },
    h('span', null, swatch(x.color || PALETTE[i % PALETTE.length]), ' ', x.label),
    h('span', { class: 'num' }, `${format(x.value)}  ${pct(x.value, total)}`))));
  return h('div', { class: 'share' }, root, legend);
}

// Share as horizontal bars (many categories: entries, cashiers).
export function barShare({ items, format = String, max = 8 }) {
  const data = items.filter((x) => x.value > 0).sort((p, q) => q.value - p.value);
  const shown = data.slice(0, max);
  if (data.length > max) {
    shown.push({ label: L('其他', 'Others'), value: data.slice(max).reduce((a, x) => a + x.value, 0) });
  }
  const total = data.reduce((a, x) => a + x.value, 0);
  if (!total) return empty();
  const W = 480;
  const row = 26;
  const lw = 110;
  const vw = 150;
  const H = shown.length * row + 4;
  const top = Math.max(...shown.map((x) => x.value));
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', dataset: { chart: 'bars' } });
  shown.forEach((x, i) => {
    const yy = i * row + 4;
    const w = Math.max(1, ((W - lw - vw) * x.value) / top);
    root.appendChild(svg('text', { x: lw - 8, y: yy + 14, 'text-anchor': 'end' }, clip(x.label, 14)));
    root.appendChild(svg('path', { class: 'bar', fill: x.color || PALETTE[i % PALETTE.length],
      d: `M${lw},${yy + 3}h${w.toFixed(1)}v14h${(-w).toFixed(1)}z` }, svg('title', null, `${x.label}: ${format(x.value)}`)));
    root.appendChild(svg('text', { x: lw + w + 6, y: yy + 14 }, `${format(x.value)} · ${pct(x.value, total)}`));
  });
  return root;
}

function pct(v, total) {
  // one decimal, integer arithmetic on per-mille
  const pm = Math.round((v * 1000) / total);
  return `${Math.trunc(pm / 10)}.${pm % 10}%`;
}

function clip(s, n) { s = String(s ?? ''); return s.length > n ? `${s.slice(0, n - 1)}…` : s; }
