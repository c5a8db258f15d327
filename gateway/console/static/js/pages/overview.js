// 数据总览: period picker, totals, trend, shares by method / channel / entry, open cases pinned on top.
import { h, icon } from '../dom.js';
import { get } from '../api.js';
import { L } from '../i18n.js';
import { yuan, int, today, addDays, shortDay, methodName, channelName } from '../fmt.js';
import { panel } from '../ui.js';
import { trendChart, donutChart, barShare } from '../charts.js';

const PERIODS = [['today', '今日', 'Today', 0], ['7d', '近7天', '7 days', 6], ['30d', '近30天', '30 days', 29], ['custom', '自定义', 'Custom']];

function periodDates(params) {
  const t = today();
  const p = PERIODS.find((x) => x[0] === params.period) || PERIODS[1];
  if (p[0] === 'custom') return { period: 'custom', begin: params.begin || t, end: params.end || t };
  return { period: p[0], begin: addDays(t, -p[3]), end: t };
}

export async function render(box, params, ctx) {
  const sel = periodDates(params);
  const picker = h('div', { class: 'panel' }, h('div', { class: 'filters' },
    h('div', { class: 'seg', dataset: { testid: 'period' } }, PERIODS.map(([key, zh, en]) => h('button', {
      class: key === sel.period ? 'on' : undefined, dataset: { period: key },
      onClick: () => ctx.navigate('overview', key === 'custom' ? { period: key, begin: sel.begin, end: sel.end } : { period: key }),
    }, L(zh, en)))),
    sel.period === 'custom' ? h('form', { class: 'row', onSubmit: (e) => {
      e.preventDefault();
      const f = e.target;
      ctx.navigate('overview', { period: 'custom', begin: f.begin.value, end: f.end.value });
    } }, h('input', { type: 'date', name: 'begin', value: sel.begin, max: today() }), '—',
    h('input', { type: 'date', name: 'end', value: sel.end, max: today() }),
    h('button', { class: 'primary', type: 'submit' }, L('查询', 'Apply'))) : null,
    h('span', { class: 'muted' }, `${sel.begin} ~ ${sel.end}`)));
  box.appendChild(picker);

  const o = await get('/overview', { begin: sel.begin, end: sel.end });
  if (!ctx.isCurrent()) return;

  // Pinned warnings: what needs a person now.
  if (o.open_cases > 0) {
    box.appendChild(h('div', { class: 'alert bad', dataset: { testid: 'open-cases' } }, icon('warn', 'alert-icon'),
      h('span', { class: 'grow' }, L(`有 ${o.open_cases} 笔单边账待处理，涉及金额 ¥${yuan(o.open_cases_amount)}`,
        `${o.open_cases} single-sided case(s) open, ¥${yuan(o.open_cases_amount)} in total`)),
      ctx.can('cases.view') ? h('a', { href: '#/cases?status=open' }, L('立即处理 ›', 'Handle now ›')) : null));
  }
  if (o.pending_approvals_for_me > 0) {
    box.appendChild(h('div', { class: 'alert warn', dataset: { testid: 'pending-approvals' } }, icon('approvals', 'alert-icon'),
      h('span', { class: 'grow' }, L(`${o.pending_approvals_for_me} 项申请等待您审核`, `${o.pending_approvals_for_me} application(s) wait for your decision`)),
      h('a', { href: '#/approvals?tab=waiting' }, L('去审核 ›', 'Review ›'))));
  }
  if (o.open_differences > 0) {
    box.appendChild(h('div', { class: 'alert warn', dataset: { testid: 'open-differences' } }, icon('recon', 'alert-icon'),
      h('span', { class: 'grow' }, L(`对账差异 ${o.open_differences} 笔待处理`, `${o.open_differences} reconciliation difference(s) open`)),
      ctx.can('recon.view') ? h('a', { href: '#/recon' }, L('查看对账 ›', 'Reconciliation ›')) : null));
  }

  const t = o.totals || {};
  const stat = (key, title, value, cls, sub) => h('div', { class: `stat ${cls || ''}`, dataset: { stat: key } },
    h('div', { class: 'label' }, title), h('div', { class: 'value' }, value), sub ? h('div', { class: 'sub' }, sub) : null);
  box.appendChild(h('div', { class: 'grid cols-4', dataset: { testid: 'totals' } },
    stat('count', L('收款笔数', 'Payments'), int(t.count)),
    stat('paid', L('收款金额 (元)', 'Collected (CNY)'), yuan(t.paid), 'ok'),
    stat('refunded', L('退款金额 (元)', 'Refunded (CNY)'), yuan(t.refunded), 'warn'),
    stat('net', L('净收入 (元)', 'Net income (CNY)'), yuan(t.net), t.net < 0 ? 'bad' : '')));

  const trend = o.trend || [];
  const money = (v) => yuan(v).replace(/\.00$/, '');
  const trendBox = trendChart({
    labels: trend.map((d) => d.day),
    bars: [{ name: L('收款金额', 'Collected'), color: '#1677ff', values: trend.map((d) => d.paid || 0) }],
    lines: [{ name: L('退款金额', 'Refunded'), color: '#fa541c', values: trend.map((d) => d.refunded || 0) }],
    format: money, tickLabel: shortDay,
  });
  const byMethod = (o.by_method || []).map((x) => ({ label: methodName(x.method ?? x.key), value: x.paid || 0 }));
  const byChannel = (o.by_channel || []).map((x) => ({ label: channelName(x.channel ?? x.key), value: x.paid || 0 }));
  const byEntry = (o.by_entry || []).map((x) => ({ label: (x.entry ?? x.key) || L('未指定入口', 'No entry'), value: x.paid || 0 }));
  box.appendChild(h('div', { class: 'grid cols-2' },
    panel(L('收款趋势', 'Trend'), trendBox, { testid: 'trend' }),
    panel(L('支付方式占比', 'Share by payment method'), donutChart({ items: byMethod, format: yuan,
      centerLabel: L('收款金额', 'Collected'), centerValue: money(t.paid || 0) }), { testid: 'by-method' })));
  box.appendChild(h('div', { class: 'grid cols-2e' },
    panel(L('收费入口占比', 'Share by entry'), barShare({ items: byEntry, format: yuan }), { testid: 'by-entry' }),
    panel(L('支付渠道占比', 'Share by channel'), donutChart({ items: byChannel, format: yuan,
      centerLabel: L('渠道', 'Channels'), centerValue: String(byChannel.length) }), { testid: 'by-channel' })));
}
