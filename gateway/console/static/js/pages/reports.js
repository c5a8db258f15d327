// 报表: pick a report, period and grouping; the table; Excel / CSV export and 打印 (HTML export).
import { h, mount } from '../dom.js';
import { get, download, fetchText } from '../api.js';
import { L, lang } from '../i18n.js';
import { yuan, int, today, addDays } from '../fmt.js';
import { table, panel, act, toast } from '../ui.js';

const GROUPS = [['day', '按日', 'By day'], ['month', '按月', 'By month'], ['quarter', '按季', 'By quarter'], ['year', '按年', 'By year']];

// 打印: the server's printable HTML export, shown as a print preview inside the console. Its
// title and table are taken over as inert nodes (DOMParser runs no script; style attributes
// are dropped: the console's stylesheet formats them, including for paper).
async function printPreview(path, params) {
  // its own <style> is dropped before parsing: the page's CSP (style-src 'self') would refuse it
  const text = (await fetchText(path, params)).replace(/<style[\s\S]*?<\/style>/gi, '');
  const doc = new DOMParser().parseFromString(text, 'text/html');
  const nodes = [...doc.body.children].filter((el) => /^(H1|H2|H3|P|TABLE)$/.test(el.tagName));
  nodes.forEach((el) => [el, ...el.querySelectorAll('*')].forEach((x) => x.removeAttribute('style')));
  const close = () => { view.remove(); document.body.classList.remove('printing'); };
  const view = h('div', { class: 'print-view', dataset: { testid: 'print-view' } },
    h('div', { class: 'print-bar' }, h('b', { class: 'grow' }, L('打印预览', 'Print preview')),
      h('button', { class: 'primary', onClick: () => window.print() }, L('打印', 'Print')),
      h('button', { onClick: close }, L('关闭', 'Close'))),
    h('div', { class: 'print-page' }, nodes.map((el) => document.importNode(el, true))));
  document.body.classList.add('printing');
  document.body.appendChild(view);
}

export async function render(box, params, ctx) {
  const t = today();
  const list = (await get('/admin/reports')).items || [];
  if (!ctx.isCurrent()) return;
  const key = params.report && list.some((r) => r.key === params.report) ? params.report : (list[0] && list[0].key);
  const begin = params.begin || addDays(t, -6);
  const end = params.end || t;
  const group = params.group || 'day';
  const q = { begin, end, group, lang: lang() };

  const exportBtn = (fmt, text) => h('button', { dataset: { testid: `export-${fmt}` }, onClick: (e) => act(e.currentTarget, async () => {
    const name = await download(`/admin/reports/${encodeURIComponent(key)}`, { ...q, format: fmt }, `${key}.${fmt}`);
    toast(L(`已导出 ${name}`, `Exported ${name}`));
  }) }, text);
  const form = h('form', { class: 'filters', onSubmit: (e) => {
    e.preventDefault();
    ctx.navigate('reports', { report: form.report.value, begin: form.begin.value, end: form.end.value, group: form.group.value });
  } },
  h('label', null, L('报表', 'Report'), h('select', { name: 'report', dataset: { testid: 'report-select' } },
    list.map((r) => h('option', { value: r.key, selected: r.key === key }, L(r.title_zh, r.title_en))))),
  h('label', null, L('开始日期', 'From'), h('input', { type: 'date', name: 'begin', value: begin, max: t })),
  h('label', null, L('结束日期', 'To'), h('input', { type: 'date', name: 'end', value: end, max: t })),
  h('label', null, L('汇总方式', 'Group'), h('select', { name: 'group' }, GROUPS.map(([v, zh, en]) => h('option', { value: v, selected: v === group }, L(zh, en))))),
  h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, L('查询', 'Show')),
    ctx.can('reports.export') ? [exportBtn('xlsx', L('导出Excel', 'Excel')), exportBtn('csv', L('导出CSV', 'CSV')),
      h('button', { type: 'button', dataset: { testid: 'print' }, onClick: (e) => act(e.currentTarget,
        () => printPreview(`/admin/reports/${encodeURIComponent(key)}`, { ...q, format: 'html' })) }, L('打印', 'Print'))] : null));
  box.appendChild(h('div', { class: 'panel' }, form));
  if (!key) { box.appendChild(h('div', { class: 'alert warn' }, L('没有可用的报表', 'No reports available'))); return; }

  const out = h('div');
  box.appendChild(out);
  const rep = await get(`/admin/reports/${encodeURIComponent(key)}`, { begin, end, group, format: 'json' });
  if (!ctx.isCurrent()) return;
  const cols = rep.columns || [];
  const cell = (c, v) => (c.kind === 'fen' ? yuan(v) : c.kind === 'int' ? int(v) : v);
  const rows = [...(rep.rows || [])];
  const totals = rep.totals && Object.keys(rep.totals).length ? { ...rep.totals, __total: true } : null;
  if (totals) rows.push(totals);
  mount(out, panel(`${L(rep.title_zh, rep.title_en)}  ${rep.begin} ~ ${rep.end}`, table({
    testid: 'report', rows,
    rowClass: (r) => (r.__total ? 'total' : undefined),
    columns: cols.map((c) => ({ title: L(c.zh, c.en) + (c.kind === 'fen' ? L('(元)', ' (CNY)') : ''), num: c.kind === 'fen' || c.kind === 'int',
      render: (r) => {
        const v = cell(c, r[c.key]);
        return c.kind === 'fen' && Number(r[c.key]) < 0 ? h('span', { class: 'neg' }, v) : v;
      } })),
  }), { flush: true, testid: 'report-panel' }));
}
