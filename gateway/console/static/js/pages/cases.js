// 单边账: open cases first and coloured; refund application, retry write-back, handle by hand; history.
import { h, mount } from '../dom.js';
import { get, post } from '../api.js';
import { L } from '../i18n.js';
import { yuan, datetime, channelName, CASE_STATUS, label } from '../fmt.js';
import { table, tabs, statusTag, tag, kv, drawer, dialog, toast, act, errorBox } from '../ui.js';
import { wbBlock, paymentDrawer } from './common.js';

const OPEN = ['OPEN', 'APPROVING', 'REFUNDING'];
const ORDER = { OPEN: 0, APPROVING: 1, REFUNDING: 2, RESOLVED: 3 };

export async function render(box, params, ctx) {
  const view = params.status || 'open';
  const listBox = h('div');
  box.appendChild(listBox);
  const refresh = () => { ctx.refreshBadges(); return load(); };
  async function load() {
    const res = await get('/admin/cases', { status: view === 'open' ? OPEN : (view === 'resolved' ? 'RESOLVED' : undefined), limit: 500 });
    if (!ctx.isCurrent()) return;
    const counts = res.counts || {};
    const openCount = OPEN.reduce((a, s) => a + (counts[s] || 0), 0);
    const all = Object.values(counts).reduce((a, n) => a + n, 0);
    const rows = [...res.items].sort((a, b) => (ORDER[a.status] ?? 9) - (ORDER[b.status] ?? 9) || (a.opened_at < b.opened_at ? 1 : -1));
    const open = (c) => caseDrawer(c.id, ctx, refresh);
    mount(listBox, h('div', { class: 'panel' },
      tabs([
        { key: 'open', title: L('待处理', 'Open'), count: openCount },
        { key: 'resolved', title: L('已处理', 'Resolved'), count: counts.RESOLVED || 0 },
        { key: 'all', title: L('全部', 'All'), count: all },
      ], view, (k) => ctx.navigate('cases', { status: k })),
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

