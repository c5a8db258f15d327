// Pieces shared by several pages: the payment detail drawer, refund application, option lists.
import { h } from '../dom.js';
import { get, post } from '../api.js';
import { L } from '../i18n.js';
import { yuan, parseYuan, datetime, label, channelName, methodName, PAYMENT_STATUS, WRITEBACK_STATUS, CASE_STATUS, APPROVAL_STATUS } from '../fmt.js';
import { drawer, dialog, kv, table, statusTag, tag, toast, errorBox } from '../ui.js';

// Lists for filters (campuses, entries, channels), loaded once per session and cached.
const cache = {};
export async function options(kind) {
  if (cache[kind]) return cache[kind];
  const load = {
    campuses: async () => (await get('/admin/campuses')).items.map((c) => [c.id, c.name || c.id]),
    entries: async () => (await get('/admin/entries')).items.map((e) => [e.code || e.id, e.name || e.code]),
    channels: async () => (await get('/admin/channels')).items.map((c) => [c.id, c.name_zh ? L(c.name_zh, c.name_en) : channelName(c.id)]),
  }[kind];
  try { cache[kind] = await load(); } catch { cache[kind] = []; }
  return cache[kind];
}

export function pre(value) {
  if (value === null || value === undefined || value === '') return '—';
  return h('pre', null, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
}

export function wbBlock(wb) {
  if (!wb) return h('div', { class: 'muted' }, L('无业务系统回写', 'No write-back to a business system'));
  return kv([
    [L('回写状态', 'Status'), statusTag(WRITEBACK_STATUS, wb.status)],
    [L('业务系统', 'System'), wb.system],
    [L('HIS流水号', 'HIS serial'), wb.his_serial],
    [L('就诊号', 'Visit'), wb.visit_no],
    [L('患者', 'Patient'), [wb.patient_name, wb.patient_id].filter(Boolean).join(' · ')],
    [L('费用单', 'Charges'), (wb.charge_ids || []).join(', ')],
    [L('尝试次数', 'Attempts'), String(wb.attempts ?? 0)],
    wb.last_error ? [L('最近错误', 'Last error'), h('span', { class: 'neg' }, `${wb.last_error_code || ''} ${wb.last_error}`)] : null,
    [L('回写时间', 'Recorded at'), datetime(wb.recorded_at)],
  ]);
}

function events(list) {
  if (!list || !list.length) return h('div', { class: 'muted' }, L('无记录', 'None'));
  return h('ul', { class: 'timeline' }, list.map((e) => h('li', { class: /FAIL|UNKNOWN/.test(e.to_status) ? 'bad' : (/SUCCEEDED|REFUNDED/.test(e.to_status) ? 'ok' : '') },
    h('div', null, e.from_status ? `${label(PAYMENT_STATUS, e.from_status)} → ` : '', h('b', null, label(PAYMENT_STATUS, e.to_status)),
      ' ', tag(e.source), e.refund_id ? tag(L(`退款 ${e.refund_id}`, `refund ${e.refund_id}`), 'info') : null,
      e.operator ? h('span', { class: 'muted' }, ` · ${e.operator}`) : null),
    h('div', { class: 'when' }, datetime(e.created_at)),
    e.detail && Object.keys(e.detail).length ? h('div', { class: 'muted mono' }, JSON.stringify(e.detail)) : null)));
}

function calls(list) {
  return table({
    rows: list || [],
    empty: L('无接口调用记录', 'No interface calls'),
    columns: [
      { title: L('时间', 'Time'), render: (c) => h('span', { class: 'nowrap' }, datetime(c.created_at)) },
      { title: L('接口', 'Interface'), render: (c) => h('span', null, c.direction === 'inbound' ? '⇢ ' : '⇠ ', c.interface) },
      { title: L('结果', 'Outcome'), render: (c) => tag(c.outcome === 'normal' ? L('正常', 'normal') : c.outcome === 'rejected' ? L('拒绝', 'rejected') : L('异常', 'abnormal'),
        c.outcome === 'normal' ? 'ok' : c.outcome === 'rejected' ? 'warn' : 'bad') },
      { title: 'HTTP', key: 'http_status' },
      { title: L('耗时', 'ms'), num: true, render: (c) => (c.latency_ms !== null && c.latency_ms !== undefined ? `${c.latency_ms} ms` : '—') },
      { title: L('报文', 'Bodies'), render: (c) => h('details', null, h('summary', null, L('查看', 'show')),
        h('div', null, h('b', null, L('请求', 'Request')), pre(c.request_body), h('b', null, L('应答', 'Response')), pre(c.response_body))) },
    ],
  });
}

// The payment drawer: summary, write-back, refunds, status history, interface log; 申请退款.
export async function paymentDrawer(paymentId, ctx, onChanged) {
  const d = drawer(L(`交易详情 ${paymentId}`, `Payment ${paymentId}`), async () => null, { testid: 'payment-drawer' });
  let raw;
  try {
    raw = await get(`/payments/${encodeURIComponent(paymentId)}/detail`);
  } catch (e) {
    d.fill(errorBox(e));
    return null;
  }
  // {payment, events, calls, …} (or the payment's fields at the top level)
  const p = raw.payment ? { ...raw.payment, ...raw, interface_calls: raw.calls || raw.interface_calls } : raw;
  const refundable = (p.amount || 0) - (p.refunded_amount || 0);
  const actions = [];
  if (ctx.can('payments.refund') && ['SUCCEEDED', 'PARTIALLY_REFUNDED'].includes(p.status) && refundable > 0) {
    actions.push(h('button', { class: 'danger', dataset: { testid: 'refund-request' },
      onClick: () => refundDialog(p, onChanged) }, L('申请退款', 'Apply for refund')));
  }
  d.fill(h('div', null,
    h('section', null, h('h3', null, L('交易信息', 'Payment')), kv([
      [L('状态', 'Status'), statusTag(PAYMENT_STATUS, p.status)],
      [L('平台流水号', 'Payment id'), h('span', { class: 'mono' }, p.payment_id)],
      [L('业务单号', 'Business number'), h('span', { class: 'mono' }, p.out_trade_no)],
      [L('渠道流水号', 'Channel trade no.'), p.channel_trade_no ? h('span', { class: 'mono' }, p.channel_trade_no) : null],
      [L('金额', 'Amount'), `¥${yuan(p.amount)}`],
      [L('已退金额', 'Refunded'), `¥${yuan(p.refunded_amount)}`],
      [L('摘要', 'Subject'), p.subject],
      [L('业务类型', 'Business type'), p.business_type],
      [L('渠道 / 方式', 'Channel / method'), `${channelName(p.channel)} / ${methodName(p.method)}`],
      [L('商户', 'Merchant'), p.merchant_id],
      [L('院区 / 入口', 'Campus / entry'), [p.campus, p.entry].filter(Boolean).join(' / ')],
      [L('收费员', 'Cashier'), p.operator],
      [L('创建时间', 'Created'), datetime(p.created_at)],
      [L('支付时间', 'Paid'), datetime(p.paid_at)],
      p.error_code ? [L('错误', 'Error'), h('span', { class: 'neg' }, `${p.error_code} ${p.error_message || ''}`)] : null,
      p.needs_review ? [L('人工复核', 'Review'), tag(L('待复核', 'needs review'), 'warn')] : null,
    ])),
    h('section', null, h('h3', null, L('HIS回写', 'Write-back')), wbBlock(p.writeback)),
    p.case ? h('section', null, h('h3', null, L('单边账', 'Single-sided case')), kv([
      [L('单边账号', 'Case'), h('a', { class: 'mono', href: `#/cases?status=all&open=${encodeURIComponent(p.case.id)}` }, p.case.id)],
      [L('状态', 'Status'), statusTag(CASE_STATUS, p.case.status)],
      [L('原因', 'Reason'), L(p.case.reason_zh || p.case.reason, p.case.reason)],
    ])) : null,
    (p.approvals || []).length ? h('section', null, h('h3', null, L('审批', 'Approvals')), table({ rows: p.approvals, columns: [
      { title: L('审批单号', 'Approval'), render: (a) => h('span', { class: 'mono' }, a.id) },
      { title: L('金额(元)', 'Amount'), num: true, render: (a) => yuan(a.amount) },
      { title: L('申请人', 'Applicant'), key: 'applicant' },
      { title: L('状态', 'Status'), render: (a) => statusTag(APPROVAL_STATUS, a.status) },
      { title: L('审核人', 'Decided by'), key: 'decided_by' },
      { title: L('意见', 'Comment'), key: 'comment' },
    ] })) : null,
    h('section', null, h('h3', null, L('退款记录', 'Refunds')), table({ rows: p.refunds || [], empty: L('无退款', 'No refunds'), columns: [
      { title: L('退款单号', 'Refund'), render: (r) => h('span', { class: 'mono' }, r.refund_id) },
      { title: L('金额', 'Amount'), num: true, render: (r) => yuan(r.amount) },
      { title: L('状态', 'Status'), render: (r) => statusTag(PAYMENT_STATUS, r.status) },
      { title: L('原因', 'Reason'), key: 'reason' },
      { title: L('时间', 'Time'), render: (r) => datetime(r.refunded_at || r.created_at) },
    ] })),
    h('section', null, h('h3', null, L('状态历史', 'Status history')), events(p.events)),
    h('section', null, h('h3', null, L('接口日志', 'Interface calls')), calls(p.interface_calls)),
  ), actions);
  return p;
}

export async function refundDialog(p, onChanged) {
  const refundable = (p.amount || 0) - (p.refunded_amount || 0);
  const out = await dialog({
    title: L('申请退款', 'Apply for a refund'), testid: 'refund-dialog',
    message: L(`交易 ${p.payment_id}，可退金额 ¥${yuan(refundable)}。退款原路退回，需经审核后执行。`,
      `Payment ${p.payment_id}: up to ¥${yuan(refundable)} can be refunded, along the original route, after approval.`),
    fields: [
      { name: 'amount', label: L('退款金额 (元)', 'Amount (CNY)'), type: 'money', required: true, value: yuan(refundable).replace(/,/g, '') },
      { name: 'reason', label: L('退款原因', 'Reason'), type: 'textarea', required: true, minLength: 2 },
    ],
    okText: L('提交审核', 'Submit for approval'),
    onSubmit: async (v) => {
      const fen = parseYuan(v.amount);
      if (fen === null || fen <= 0) throw new Error(L('请输入正确的金额，最多两位小数', 'Enter an amount with at most two decimals'));
      if (fen > refundable) throw new Error(L(`超过可退金额 ¥${yuan(refundable)}`, `More than the refundable ¥${yuan(refundable)}`));
      return post(`/payments/${encodeURIComponent(p.payment_id)}/refund-requests`, { amount: fen, reason: v.reason });
    },
  });
  const approvalId = out && (out.approval_id || out.id);
  if (approvalId) {
    toast(L(`已提交退款申请，审批单 ${approvalId}`, `Refund application ${approvalId} submitted`));
    if (onChanged) onChanged();
  }
}
