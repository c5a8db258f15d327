// 交易管理: filters, the payments table with pagination, the detail drawer.
import { h, mount } from '../dom.js';
import { get } from '../api.js';
import { L } from '../i18n.js';
import { yuan, datetime, today, addDays, channelName, methodName, PAYMENT_STATUS, METHODS, CHANNELS, label } from '../fmt.js';
import { table, pager, panel, filterBar, statusTag } from '../ui.js';
import { options, paymentDrawer } from './common.js';

const FILTER_KEYS = ['begin', 'end', 'campus', 'entry', 'channel', 'method', 'status', 'out_trade_no', 'channel_trade_no', 'patient'];

export async function render(box, params, ctx) {
  const t = today();
  const values = { begin: params.begin || addDays(t, -6), end: params.end || t };
  FILTER_KEYS.slice(2).forEach((k) => { if (params[k]) values[k] = params[k]; });
  const limit = parseInt(params.limit || '20', 10);
  const offset = parseInt(params.offset || '0', 10);

  // The lists come from the configuration routes; without config.view the fields are typed in.
  const lists = ctx.can('config.view')
    ? await Promise.all([options('campuses'), options('entries'), options('channels')])
    : [[], [], Object.keys(CHANNELS).map((k) => [k, channelName(k)])];
  const [campuses, entries, channels] = lists;
  const pick = (name, label, opts) => (opts.length ? { name, label, type: 'select', options: opts } : { name, label });
  const go = (v, off = 0, lim = limit) => ctx.navigate('transactions', { ...v, offset: off || undefined, limit: lim !== 20 ? lim : undefined });
  box.appendChild(h('div', { class: 'panel' }, filterBar([
    { name: 'begin', label: L('开始日期', 'From'), type: 'date' },
    { name: 'end', label: L('结束日期', 'To'), type: 'date' },
    pick('campus', L('院区', 'Campus'), campuses),
    pick('entry', L('收费入口', 'Entry'), entries),
    pick('channel', L('支付渠道', 'Channel'), channels),
    { name: 'method', label: L('支付方式', 'Method'), type: 'select', options: Object.keys(METHODS).map((k) => [k, methodName(k)]) },
    { name: 'status', label: L('状态', 'Status'), type: 'select', options: Object.keys(PAYMENT_STATUS).filter((k) => k !== 'PROCESSING').map((k) => [k, label(PAYMENT_STATUS, k)]) },
    { name: 'out_trade_no', label: L('业务单号', 'Business number'), placeholder: 'out_trade_no' },
    { name: 'channel_trade_no', label: L('渠道流水号', 'Channel trade no.') },
    { name: 'patient', label: L('患者', 'Patient'), placeholder: L('患者ID/卡号/姓名', 'id, card no. or name') },
  ], values, (v) => go(v), { resetValues: { begin: addDays(t, -6), end: t } })));

  const listBox = h('div');
  box.appendChild(listBox);
  const open = (row) => paymentDrawer(row.payment_id, ctx, () => load());
  async function load() {
    const res = await get('/payments/search', { ...values, limit, offset });
    if (!ctx.isCurrent()) return;
    const tbl = table({
      testid: 'payments',
      rows: res.items,
      rowClass: (p) => (p.status === 'FAILED' ? 'row-bad' : (['UNKNOWN', 'PAYING'].includes(p.status) || p.needs_review ? 'row-warn' : undefined)),
      onRowClick: open,
      columns: [
        { title: L('创建时间', 'Created'), render: (p) => h('span', { class: 'nowrap' }, datetime(p.created_at)) },
        { title: L('平台流水号', 'Payment id'), render: (p) => h('a', { class: 'mono', onClick: () => open(p) }, p.payment_id) },
        { title: L('业务单号', 'Business number'), render: (p) => h('span', { class: 'mono' }, p.out_trade_no) },
        { title: L('摘要', 'Subject'), key: 'subject' },
        { title: L('金额(元)', 'Amount'), num: true, render: (p) => yuan(p.amount) },
        { title: L('已退(元)', 'Refunded'), num: true, render: (p) => (p.refunded_amount ? yuan(p.refunded_amount) : '—') },
        { title: L('渠道', 'Channel'), render: (p) => channelName(p.channel) },
        { title: L('方式', 'Method'), render: (p) => methodName(p.method) },
        { title: L('院区', 'Campus'), key: 'campus' },
        { title: L('入口', 'Entry'), key: 'entry' },
        { title: L('状态', 'Status'), render: (p) => statusTag(PAYMENT_STATUS, p.status) },
        { title: L('操作', 'Actions'), cls: 'actions', render: (p) => h('button', { class: 'link', onClick: () => open(p) }, L('详情', 'Details')) },
      ],
    });
    const sums = res.total_amount !== undefined ? h('span', { class: 'muted', dataset: { testid: 'payments-sum' } },
      L(`合计金额 ¥${yuan(res.total_amount)}，已退 ¥${yuan(res.total_refunded || 0)}`,
        `Total ¥${yuan(res.total_amount)}, refunded ¥${yuan(res.total_refunded || 0)}`)) : null;
    mount(listBox, panel(L('交易列表', 'Payments'),
      [tbl, pager({ total: res.total, limit, offset, onChange: (off, lim) => go(values, off, lim) })],
      { flush: true, actions: sums }));
  }
  await load();
  if (params.open) open({ payment_id: params.open });
}
