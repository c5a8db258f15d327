// 审核: 我的申请 / 待我审核 / 我已审核; approve or reject with a comment (one or a batch); withdraw own.
import { h, mount } from '../dom.js';
import { get, post } from '../api.js';
import { L } from '../i18n.js';
import { yuan, datetime, APPROVAL_STATUS } from '../fmt.js';
import { table, tabs, statusTag, dialog, toast } from '../ui.js';

const KIND = { case_refund: ['单边账退款', 'Single-sided case refund'], ins_centre_reversal: ['医保中心单边冲正', 'Insurance centre reversal'],
  payment_refund: ['交易退款', 'Payment refund'] };

export async function render(box, params, ctx) {
  const tab = ['mine', 'waiting', 'done'].includes(params.tab) ? params.tab : (ctx.can('approvals.decide') ? 'waiting' : 'mine');
  const listBox = h('div', { class: 'panel' });
  box.appendChild(listBox);
  const selected = new Set();

  async function load() {
    selected.clear();
    const res = await get('/admin/approvals', { view: tab, limit: 500 });
    if (!ctx.isCurrent()) return;
    const items = res.items || [];
    const decide = async (ids, approve) => {
      const out = await dialog({
        title: approve ? L('审核通过', 'Approve') : L('驳回', 'Reject'), testid: 'decide-dialog',
        message: ids.length > 1 ? L(`共 ${ids.length} 项申请`, `${ids.length} applications`) : null,
        fields: [{ name: 'comment', label: L('审核意见', 'Comment'), type: 'textarea', required: !approve, minLength: approve ? 0 : 2 }],
        okText: approve ? L('通过', 'Approve') : L('驳回', 'Reject'), danger: !approve,
        onSubmit: async (v) => {
          const comment = v.comment || undefined;
          if (ids.length === 1) return post(`/admin/approvals/${encodeURIComponent(ids[0])}/${approve ? 'approve' : 'reject'}`, { comment });
          const r = await post('/admin/approvals/batch', { ids, decision: approve ? 'approve' : 'reject', comment });
          const failed = (r.results || []).filter((x) => x.ok === false || x.error);
          if (failed.length) toast(L(`${failed.length} 项未能处理`, `${failed.length} could not be decided`), 'bad');
          return r;
        },
      });
      if (out) {
        toast(approve ? L('已通过，退款将原路执行', 'Approved: the refund is carried out') : L('已驳回', 'Rejected'));
        ctx.refreshBadges();
        load();
      }
    };
    const withdraw = async (a) => {
      const out = await dialog({ title: L('撤回申请', 'Withdraw'), testid: 'withdraw-dialog',
        fields: [{ name: 'comment', label: L('说明', 'Comment'), type: 'textarea' }], okText: L('撤回', 'Withdraw'), danger: true,
        onSubmit: (v) => post(`/admin/approvals/${encodeURIComponent(a.id)}/withdraw`, { comment: v.comment || undefined }) });
      if (out) { toast(L('已撤回', 'Withdrawn')); load(); }
    };
    const canDecide = tab === 'waiting' && ctx.can('approvals.decide');
    const batchBar = canDecide && items.length > 1 ? h('div', { class: 'filters' },
      h('button', { class: 'ok', onClick: () => selected.size && decide([...selected], true) }, L('批量通过', 'Approve selected')),
      h('button', { class: 'danger', onClick: () => selected.size && decide([...selected], false) }, L('批量驳回', 'Reject selected'))) : null;
    const columns = [
      canDecide ? { title: '', render: (a) => h('input', { type: 'checkbox', onChange: (e) => (e.target.checked ? selected.add(a.id) : selected.delete(a.id)) }) } : null,
      { title: L('申请时间', 'Applied'), render: (a) => h('span', { class: 'nowrap' }, datetime(a.created_at)) },
      { title: L('审批单号', 'Approval'), render: (a) => h('span', { class: 'mono' }, a.id) },
      { title: L('类型', 'Kind'), render: (a) => (KIND[a.kind] ? L(...KIND[a.kind]) : L(a.kind_zh || a.kind, a.kind)) },
      { title: L('对象', 'Target'), render: (a) => targetLink(a) },
      { title: L('金额(元)', 'Amount'), num: true, render: (a) => yuan(a.amount) },
      { title: L('申请人', 'Applicant'), key: 'applicant' },
      { title: L('原因', 'Reason'), key: 'reason' },
      { title: L('审核角色', 'Approver role'), key: 'required_role' },
      { title: L('状态', 'Status'), render: (a) => statusTag(APPROVAL_STATUS, a.status) },
      { title: L('审核人', 'Decided by'), key: 'decided_by' },
      { title: L('意见', 'Comment'), key: 'comment' },
      { title: L('操作', 'Actions'), cls: 'actions', render: (a) => {
        if (a.status !== 'PENDING') return '—';
        if (tab === 'waiting' && ctx.can('approvals.decide')) {
          return h('span', null, h('button', { class: 'small ok', dataset: { testid: 'approve' }, onClick: () => decide([a.id], true) }, L('通过', 'Approve')), ' ',
            h('button', { class: 'small danger', dataset: { testid: 'reject' }, onClick: () => decide([a.id], false) }, L('驳回', 'Reject')));
        }
        if (tab === 'mine') return h('button', { class: 'small', dataset: { testid: 'withdraw' }, onClick: () => withdraw(a) }, L('撤回', 'Withdraw'));
        return '—';
      } },
    ].filter(Boolean);
    mount(listBox,
      tabs([{ key: 'mine', title: L('我的申请', 'My applications') },
        ctx.can('approvals.decide') ? { key: 'waiting', title: L('待我审核', 'Waiting for me') } : null,
        ctx.can('approvals.decide') ? { key: 'done', title: L('我已审核', 'Decided by me') } : null].filter(Boolean),
      tab, (k) => ctx.navigate('approvals', { tab: k })),
      batchBar,
      table({ testid: 'approvals', rows: items, columns,
        rowClass: (a) => (a.status === 'PENDING' ? 'row-warn' : undefined),
        empty: tab === 'waiting' ? L('没有等待您审核的申请', 'Nothing waits for your decision') : undefined }));
  }
  await load();
}

function targetLink(a) {
  if (a.kind === 'case_refund') return h('a', { class: 'mono', href: `#/cases?status=all&open=${encodeURIComponent(a.target_id)}` }, a.target_id);
  if (a.kind === 'payment_refund') return h('a', { class: 'mono', href: `#/transactions?open=${encodeURIComponent(a.target_id)}` }, a.target_id);
  return h('span', { class: 'mono' }, a.target_id);
}
