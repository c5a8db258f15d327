// 单边账: open cases first and coloured; refund application, retry write-back, handle by hand; history.
// 回写HIS异常: failed and refused write-backs searched by day, patient, visit, serial, trade, charge.
import { h, mount } from '../dom.js';
import { get, post } from '../api.js';
import { L } from '../i18n.js';
import { yuan, datetime, channelName, CASE_STATUS, WRITEBACK_STATUS, label } from '../fmt.js';
import { table, tabs, statusTag, tag, kv, drawer, dialog, toast, act, errorBox, filterBar } from '../ui.js';
import { wbBlock, paymentDrawer } from './common.js';

const OPEN = ['OPEN', 'APPROVING', 'REFUNDING'];
const ORDER = { OPEN: 0, APPROVING: 1, REFUNDING: 2, RESOLVED: 3 };
const WB_KEYS = ['date', 'patient_id', 'patient_name', 'visit_no', 'his_serial', 'trade_no', 'charge_id', 'status', 'kind'];
const WB_KIND = { payment: ['收费回写', 'Payment'], refund: ['退费回写', 'Refund'], ins_setl: ['医保结算', 'Insurance'],
  ins_rev: ['医保撤销', 'Insurance reversal'] };

export async function render(box, params, ctx) {
  const view = params.view === 'writebacks' ? 'writebacks' : (params.status || 'open');
  const listBox = h('div');
  box.appendChild(listBox);
  const refresh = () => { ctx.refreshBadges(); return load(); };
  const go = (k) => ctx.navigate('cases', k === 'writebacks' ? { view: k } : { status: k });
  async function load() {
    const res = await get('/admin/cases', view === 'writebacks' ? { limit: 1 }
      : { status: view === 'open' ? OPEN : (view === 'resolved' ? 'RESOLVED' : undefined), limit: 500 });
    if (!ctx.isCurrent()) return;
    const counts = res.counts || {};
    const openCount = OPEN.reduce((a, s) => a + (counts[s] || 0), 0);
    const all = Object.values(counts).reduce((a, n) => a + n, 0);
    const strip = tabs([
      { key: 'open', title: L('待处理', 'Open'), count: openCount },
      { key: 'resolved', title: L('已处理', 'Resolved'), count: counts.RESOLVED || 0 },
      { key: 'all', title: L('全部', 'All'), count: all },
      { key: 'writebacks', title: L('回写HIS异常', 'Write-back exceptions') },
    ], view, go);
    if (view === 'writebacks') {
      mount(listBox, h('div', { class: 'panel' }, strip, await writebacks(params, ctx, refresh)));
      return;
    }
    const rows = [...res.items].sort((a, b) => (ORDER[a.status] ?? 9) - (ORDER[b.status] ?? 9) || (a.opened_at < b.opened_at ? 1 : -1));
    const open = (c) => caseDrawer(c.id, ctx, refresh);
    mount(listBox, h('div', { class: 'panel' },
      strip,
      table({
        testid: 'cases', rows,
        empty: view === 'open' ? L('没有待处理的单边账', 'No open single-sided cases') : undefined,
        rowClass: (c) => (c.status === 'OPEN' ? 'row-bad' : (OPEN.includes(c.status) ? 'row-warn' : undefined)),
        onRowClick: open,
        columns: [
          { title: L('开立时间', 'Opened'), render: (c) => h('span', { class: 'nowrap' }, datetime(c.opened_at)) },
          { title: L('单边账号', 'Case'), render: (c) => h('a', { class: 'mono', onClick: () => open(c) }, c.id) },
          { title: L('平台流水号', 'Payment id'), render: (c) => h('span', { class: 'mono' }, c.payment_id) },
          { title: L('业务系统', 'System'), key: 'system' },
          { title: L('渠道', 'Channel'), render: (c) => channelName(c.channel) },
          { title: L('金额(元)', 'Amount'), num: true, render: (c) => yuan(c.amount) },
          { title: L('原因', 'Reason'), render: (c) => L(c.reason_zh || c.reason, c.reason) },
          { title: L('状态', 'Status'), render: (c) => statusTag(CASE_STATUS, c.status) },
          { title: L('处理结果', 'Resolution'), render: (c) => (c.resolution ? L(c.resolution_zh || c.resolution, c.resolution) : '—') },
          { title: L('操作', 'Actions'), cls: 'actions', render: (c) => h('button', { class: 'link', onClick: () => open(c) }, L('处理', 'Handle')) },
        ],
      })));
  }
  await load();
  if (params.open) caseDrawer(params.open, ctx, refresh);
}

// 回写HIS异常: the search form, the rows with their single-sided case, retry and 原路退款.
async function writebacks(params, ctx, refresh) {
  const values = {};
  WB_KEYS.forEach((k) => { if (params[k]) values[k] = params[k]; });
  const search = (v) => ctx.navigate('cases', { view: 'writebacks', ...v });
  const form = filterBar([
    { name: 'date', label: L('日期', 'Day'), type: 'date' },
    { name: 'patient_id', label: L('患者ID', 'Patient id') },
    { name: 'patient_name', label: L('患者姓名', 'Patient name') },
    { name: 'visit_no', label: L('就诊号', 'Visit no.') },
    { name: 'his_serial', label: L('业务流水号', 'Business serial') },
    { name: 'trade_no', label: L('交易号', 'Trade no.'), placeholder: L('平台/业务/渠道单号', 'payment, order or channel no.') },
    { name: 'charge_id', label: L('费用单号', 'Charge id') },
    // 全部 (no status): the exceptions, failed or refused
    { name: 'status', label: L('回写状态', 'Status'), type: 'select', options: [['FAILED', label(WRITEBACK_STATUS, 'FAILED')], ['REJECTED', label(WRITEBACK_STATUS, 'REJECTED')],
      ['PENDING', label(WRITEBACK_STATUS, 'PENDING')], ['RECORDED', label(WRITEBACK_STATUS, 'RECORDED')],
      ['CANCELLED', label(WRITEBACK_STATUS, 'CANCELLED')]] },
    { name: 'kind', label: L('类型', 'Kind'), type: 'select', options: Object.entries(WB_KIND).map(([k, v]) => [k, L(v[0], v[1])]) },
  ], values, search);
  const res = await get('/admin/his/writebacks', { ...values, limit: 500 });
  const reload = () => { refresh(); };
  const refundable = (w) => w.kind === 'payment' && ['FAILED', 'REJECTED'].includes(w.status)
    && !['APPROVING', 'REFUNDING', 'RESOLVED'].includes(w.case_status || '');
  const actions = (w) => {
    if (!ctx.can('cases.handle')) return '—';
    const out = [];
    if (['FAILED', 'REJECTED'].includes(w.status)) {
      out.push(h('button', { class: 'link', dataset: { testid: 'wb-retry' }, onClick: (e) => act(e.currentTarget, async () => {
        await post(`/admin/his/writebacks/${encodeURIComponent(w.refund_id || w.payment_id)}/retry`);
        reload();
      }, L('已重新回写', 'Write-back retried')) }, L('重试回写', 'Retry')));
    }
    if (refundable(w)) {
      out.push(h('button', { class: 'link danger', dataset: { testid: 'wb-refund' }, onClick: async () => {
        const done = await dialog({ title: L('原路退款', 'Refund along the original route'), testid: 'wb-refund-dialog',
          message: L(`交易 ${w.payment_id} 的 ¥${yuan(w.amount)} 将经单边账审核后原路退回患者。`,
            `¥${yuan(w.amount)} of payment ${w.payment_id} goes back to the patient after the case's approval.`),
          fields: [{ name: 'reason', label: L('原因', 'Reason'), type: 'textarea', required: true, minLength: 2,
            value: L('HIS拒绝入账，原路退款', 'Refused by the HIS: refund') }],
          okText: L('提交审核', 'Submit for approval'),
          onSubmit: (v) => post(`/admin/his/writebacks/${encodeURIComponent(w.payment_id)}/refund`, { reason: v.reason }) });
        if (done) { toast(L(`已提交审核，审批单 ${done.approval_id}`, `Submitted: approval ${done.approval_id}`)); reload(); }
      } }, L('原路退款', 'Refund')));
    }
    return out.length ? h('span', null, out) : '—';
  };
  return h('div', null, form, table({
    testid: 'writebacks', rows: res.items || [],
    empty: L('没有符合条件的回写异常', 'No write-back exceptions match'),
    rowClass: (w) => (w.status === 'REJECTED' || w.status === 'FAILED' ? (w.case_status === 'RESOLVED' ? undefined : 'row-bad') : undefined),
    columns: [
      { title: L('时间', 'Time'), render: (w) => h('span', { class: 'nowrap' }, datetime(w.created_at)) },
      { title: L('类型', 'Kind'), render: (w) => label(WB_KIND, w.kind) },
      { title: L('交易号', 'Trade no.'), render: (w) => h('span', null,
        h('a', { class: 'mono', onClick: () => paymentDrawer(w.payment_id, ctx) }, w.payment_id),
        w.refund_id ? h('div', { class: 'muted mono' }, w.refund_id) : null) },
      { title: L('业务系统', 'System'), key: 'system' },
      { title: L('患者', 'Patient'), render: (w) => [w.patient_name, w.patient_id].filter(Boolean).join(' · ') },
      { title: L('就诊号', 'Visit'), render: (w) => (w.visit_no ? h('span', { class: 'mono' }, w.visit_no) : '—') },
      { title: L('费用单', 'Charges'), render: (w) => h('span', { class: 'mono' }, (w.charge_ids || []).join(', ')) },
      { title: L('金额(元)', 'Amount'), num: true, render: (w) => yuan(w.amount) },
      { title: L('回写状态', 'Status'), render: (w) => statusTag(WRITEBACK_STATUS, w.status) },
      { title: L('原因', 'Error'), render: (w) => (w.last_error || w.last_error_code
        ? h('span', { class: 'neg' }, `${w.last_error_code || ''} ${w.last_error || ''}`.trim()) : '—') },
      { title: L('单边账', 'Case'), render: (w) => (w.case_id ? h('span', null,
        h('a', { class: 'mono', dataset: { testid: 'wb-case' }, onClick: () => caseDrawer(w.case_id, ctx, reload) }, w.case_id), ' ',
        statusTag(CASE_STATUS, w.case_status)) : '—') },
      { title: L('操作', 'Actions'), cls: 'actions', render: actions },
    ],
  }));
}

export async function caseDrawer(caseId, ctx, onChanged) {
  const d = drawer(L(`单边账 ${caseId}`, `Case ${caseId}`), async () => null, { testid: 'case-drawer' });
  let c;
  try {
    c = await get(`/admin/cases/${encodeURIComponent(caseId)}`);
  } catch (e) {
    d.fill(errorBox(e));
    return;
  }
  const reload = () => { if (onChanged) onChanged(); caseDrawer(caseId, ctx, onChanged); };
  const actions = [];
  if (ctx.can('cases.handle') && c.status === 'OPEN') {
    actions.push(h('button', { class: 'danger', dataset: { testid: 'case-refund' }, onClick: async () => {
      const out = await dialog({ title: L('申请原路退款', 'Apply for a refund along the original route'), testid: 'case-refund-dialog',
        message: L(`退款 ¥${yuan(c.amount)} 将原路退回患者，需经审核（申请人不能审核自己的申请）。`,
          `¥${yuan(c.amount)} goes back to the patient along the original route after approval (not by the applicant).`),
        fields: [{ name: 'reason', label: L('原因', 'Reason'), type: 'textarea', required: true, minLength: 2, value: L(c.reason_zh || '', c.reason || '') }],
        okText: L('提交审核', 'Submit for approval'),
        onSubmit: (v) => post(`/admin/cases/${encodeURIComponent(c.id)}/refund`, { reason: v.reason }) });
      if (out) { toast(L(`已提交审核，审批单 ${out.approval_id}`, `Submitted: approval ${out.approval_id}`)); reload(); }
    } }, L('申请退款', 'Apply for refund')));
    actions.push(h('button', { dataset: { testid: 'case-retry' }, onClick: (e) => act(e.currentTarget, async () => {
      await post(`/admin/cases/${encodeURIComponent(c.id)}/retry-write-back`);
      reload();
    }, L('已重新回写', 'Write-back retried')) }, L('重试回写', 'Retry write-back')));
  }
  if (ctx.can('cases.handle') && c.status !== 'RESOLVED' && c.status !== 'REFUNDING') {
    actions.push(h('button', { dataset: { testid: 'case-resolve' }, onClick: async () => {
      const out = await dialog({ title: L('人工处理', 'Handle by hand'), testid: 'case-resolve-dialog',
        message: L('例如已在窗口现金退款。请写明处理方式，将记入历史与操作日志。', 'E.g. refunded in cash at the window. The note goes to the history and the operation log.'),
        fields: [{ name: 'note', label: L('处理说明', 'Note'), type: 'textarea', required: true, minLength: 2 }],
        onSubmit: (v) => post(`/admin/cases/${encodeURIComponent(c.id)}/resolve`, { note: v.note }) });
      if (out) { toast(L('已标记为人工处理', 'Marked as handled by hand')); reload(); }
    } }, L('人工处理', 'Handle by hand')));
  }
  const p = c.payment || {};
  d.fill(h('div', null,
    c.status !== 'RESOLVED' ? h('div', { class: c.status === 'OPEN' ? 'alert bad' : 'alert warn' },
      h('span', { class: 'grow' }, `${label(CASE_STATUS, c.status)} · ${L(c.reason_zh || c.reason, c.reason)}`), c.reason_detail || '') : null,
    h('section', null, h('h3', null, L('单边账', 'Case')), kv([
      [L('状态', 'Status'), statusTag(CASE_STATUS, c.status)],
      [L('金额', 'Amount'), `¥${yuan(c.amount)}`],
      [L('原因', 'Reason'), L(c.reason_zh || c.reason, c.reason)],
      [L('详情', 'Detail'), c.reason_detail],
      [L('业务系统', 'System'), c.system],
      [L('渠道', 'Channel'), channelName(c.channel)],
      [L('平台流水号', 'Payment id'), h('a', { class: 'mono', onClick: () => paymentDrawer(c.payment_id, ctx) }, c.payment_id)],
      [L('渠道流水号', 'Channel trade no.'), p.channel_trade_no],
      [L('业务单号', 'Business number'), p.out_trade_no],
      [L('审批单', 'Approval'), c.approval_id ? h('a', { href: `#/approvals?tab=mine&id=${encodeURIComponent(c.approval_id)}` }, c.approval_id) : null],
      [L('退款单', 'Refund'), c.refund_id],
      [L('处理结果', 'Resolution'), c.resolution ? L(c.resolution_zh || c.resolution, c.resolution) : null],
      [L('处理人', 'Resolved by'), c.resolved_by],
      [L('说明', 'Note'), c.note],
      [L('开立时间', 'Opened'), datetime(c.opened_at)],
      [L('处理时间', 'Resolved'), datetime(c.resolved_at)],
    ])),
    h('section', null, h('h3', null, L('HIS回写', 'Write-back')), wbBlock(c.writeback)),
    h('section', null, h('h3', null, L('处理历史', 'History')), (c.history || []).length
      ? h('ul', { class: 'timeline', dataset: { testid: 'case-history' } }, c.history.map((e) => h('li', null,
        h('div', null, h('b', null, e.action), e.actor ? h('span', { class: 'muted' }, ` · ${e.actor}`) : null),
        h('div', { class: 'when' }, datetime(e.created_at)),
        e.detail && Object.keys(e.detail).length ? h('div', { class: 'muted mono' }, JSON.stringify(e.detail)) : null)))
      : h('div', { class: 'muted' }, L('无', 'None'))),
    h('section', null, h('h3', null, L('已发送通知', 'Notifications sent')), table({
      rows: c.notices || [], empty: L('无通知', 'No notifications'),
      columns: [
        { title: L('时间', 'Time'), render: (n) => datetime(n.created_at) },
        { title: L('事件', 'Event'), key: 'event' },
        { title: L('对象', 'Audience'), render: (n) => (n.audience === 'patient' ? L('患者', 'patient') : L('工作人员', 'staff')) },
        { title: L('通道', 'Notifier'), key: 'notifier' },
        { title: L('状态', 'Status'), render: (n) => tag(n.status, n.status === 'DELIVERED' || n.status === 'SENT' ? 'ok' : (n.status === 'FAILED' || n.status === 'EXHAUSTED' ? 'bad' : 'warn')) },
      ],
    })),
  ), actions);
}

