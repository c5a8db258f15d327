// 对账: month calendar with day states, one-click run, run summary, differences by class with
// drill-down and marks; insurance reconciliation (3201 groups → 3202 settlements → 冲正).
import { h, mount } from '../dom.js';
import { get, post, upload } from '../api.js';
import { L } from '../i18n.js';
import { yuan, int, datetime, today, addMonths, monthOf, label, channelName, DAY_STATE, DIFF_CLASS, DIFF_STATUS, MARKS, SOURCES } from '../fmt.js';
import { table, panel, tag, statusTag, kv, drawer, dialog, toast, act, errorBox, tabs } from '../ui.js';
import { caseDrawer } from './cases.js';

const INS = ['ins_amount', 'ins_hospital_only', 'ins_centre_only'];
const DOW = [['一', 'Mon'], ['二', 'Tue'], ['三', 'Wed'], ['四', 'Thu'], ['五', 'Fri'], ['六', 'Sat'], ['日', 'Sun']];

function channelLabel(c) {
  if (!c || c === '-') return L('未分渠道', 'No channel');
  if (c.startsWith('insurance:')) return L(`医保 ${c.slice(10)}`, `Insurance ${c.slice(10)}`);
  return channelName(c);
}

export async function render(box, params, ctx) {
  const t = today();
  const tab = ['insurance', 'import'].includes(params.tab) && (params.tab !== 'import' || ctx.can('recon.handle'))
    ? params.tab : 'daily';
  box.appendChild(h('div', { class: 'panel' }, tabs([
    { key: 'daily', title: L('日对账', 'Daily reconciliation') },
    { key: 'insurance', title: L('医保对账', 'Insurance reconciliation') },
    ctx.can('recon.handle') ? { key: 'import', title: L('账单导入', 'Imports') } : null,
  ].filter(Boolean), tab, (k) => ctx.navigate('recon', { tab: k }))));
  if (tab === 'insurance') { await insurance(box, params, ctx); return; }
  if (tab === 'import') { await imports(box, params, ctx); return; }

  const month = /^\d{4}-\d{2}$/.test(params.month || '') ? params.month : monthOf(params.date || t);
  const day = params.date && monthOf(params.date) === month ? params.date : (month === monthOf(t) ? t : `${month}-01`);
  const calBox = h('div');
  const dayBox = h('div', { class: 'stack' });
  box.appendChild(h('div', { class: 'grid cols-2e' }, calBox, dayBox));

  async function loadCalendar() {
    const cal = await get('/admin/recon/calendar', { month });
    if (!ctx.isCurrent()) return;
    const first = new Date(`${month}-01T00:00:00Z`).getUTCDay(); // 0 = Sunday
    const pad = (first + 6) % 7;
    const cells = [];
    DOW.forEach(([zh, en]) => cells.push(h('div', { class: 'dow' }, L(zh, en))));
    for (let i = 0; i < pad; i += 1) cells.push(h('div', { class: 'day pad' }));
    (cal.days || []).forEach((d) => {
      const future = d.day > t;
      const chans = Object.entries(d.channels || {}).filter(([, n]) => n > 0);
      cells.push(h('div', {
        class: ['day', `s-${d.state}`, d.day === day ? 'sel' : '', future ? 'future' : ''],
        dataset: { day: d.day, state: d.state }, title: L(d.state_zh || '', d.state),
        onClick: () => { if (!future) ctx.navigate('recon', { month, date: d.day }); },
      },
      h('div', { class: 'd' }, h('span', null, String(parseInt(d.day.slice(8), 10))),
        d.insurance ? tag(L('医保', 'Ins'), d.insurance.state === 'balanced' ? 'ok' : 'bad') : null),
      future ? null : h('div', { class: 'st' }, label(DAY_STATE, d.state)),
      d.open_differences ? h('div', null, L(`待处理 ${d.open_differences}`, `${d.open_differences} open`)) : null,
      chans.slice(0, 3).map(([c, n]) => h('div', { class: 'ch' }, `${channelLabel(c)} ${n}`))));
    });
    mount(calBox, panel(L(`对账日历 ${month}`, `Calendar ${month}`), [
      h('div', { class: 'cal', dataset: { testid: 'calendar' } }, cells),
      h('div', { class: 'cal-legend' }, ['balanced', 'differences', 'incomplete', 'not_run'].map((s) =>
        h('span', null, h('span', { class: `sw s-${s}` }), label(DAY_STATE, s)))),
    ], { actions: h('span', { class: 'row' },
      h('button', { class: 'small', onClick: () => ctx.navigate('recon', { month: addMonths(month, -1) }) }, '‹'),
      h('button', { class: 'small', onClick: () => ctx.navigate('recon', { month: monthOf(t), date: t }) }, L('本月', 'This month')),
      h('button', { class: 'small', disabled: month >= monthOf(t), onClick: () => ctx.navigate('recon', { month: addMonths(month, 1) }) }, '›')) }));
  }

  async function loadDay(lastRun) {
    const [runs, fetches] = await Promise.all([get('/admin/recon/runs', { date: day, limit: 20 }),
      get('/admin/recon/fetches', { date: day, limit: 200 }).catch(() => ({ items: [] }))]);
    if (!ctx.isCurrent()) return;
    const dayRuns = (runs.items || []).filter((r) => r.mode !== 'ins');
    const run = lastRun || dayRuns.find((r) => r.status === 'DONE') || dayRuns[0];
    const runBtn = ctx.can('recon.run') ? h('button', { class: 'primary', dataset: { testid: 'run-recon' }, onClick: (e) => act(e.currentTarget, async () => {
      e.currentTarget.textContent = L('对账中…', 'Running…');
      const out = await post('/admin/recon/runs', { date: day, mode: 't1' });
      toast(L(`${day} 对账完成`, `${day} reconciled`));
      await Promise.all([loadCalendar(), loadDay(out), loadDiffs()]);
    }) }, L('一键对账', 'Reconcile now')) : null;
    mount(dayBox, panel(L(`${day} 对账结果`, `${day} result`), run ? runSummary(run, fetches.items || []) : h('div', { class: 'muted' },
      L('该日尚未对账。点击「一键对账」拉取平台、HIS、渠道账单并核对。', 'Not reconciled yet. "Reconcile now" fetches the platform, HIS and channel bills and matches them.')),
    { actions: runBtn, testid: 'run-summary' }));
  }

  const diffBox = h('div');
  box.appendChild(diffBox);
  let cls = params.class || '';
  let status = params.status || 'OPEN';
  async function loadDiffs() {
    const res = await get('/admin/recon/diffs', { date: day, status: status === 'all' ? undefined : status, limit: 500 });
    if (!ctx.isCurrent()) return;
    const items = (res.items || []).filter((d) => !INS.includes(d.class));
    const counts = {};
    items.forEach((d) => { counts[d.class] = (counts[d.class] || 0) + 1; });
    const shown = cls ? items.filter((d) => d.class === cls) : items;
    const chips = h('div', { class: 'chips', dataset: { testid: 'diff-classes' } },
      h('span', { class: cls ? 'chip' : 'chip on', onClick: () => { cls = ''; loadDiffs(); } }, L('全部', 'All'), h('span', { class: 'n' }, String(items.length))),
      Object.keys(counts).sort().map((k) => h('span', { class: cls === k ? 'chip on' : 'chip', dataset: { cls: k }, onClick: () => { cls = k; loadDiffs(); } },
        label(DIFF_CLASS, k), h('span', { class: 'n' }, String(counts[k])))));
    const statusSel = h('select', { onChange: (e) => { status = e.target.value; loadDiffs(); } },
      [['OPEN', L('待处理', 'Open')], ['RESOLVED', L('已处理', 'Resolved')], ['CLEARED', L('已自动消除', 'Cleared')], ['all', L('全部状态', 'Any status')]]
        .map(([v, tx]) => h('option', { value: v, selected: v === status }, tx)));
    mount(diffBox, panel(L(`${day} 差异明细`, `${day} differences`), [
      h('div', { class: 'filters' }, chips, h('span', { class: 'grow' }), statusSel),
      diffTable(shown, ctx, () => Promise.all([loadDiffs(), loadCalendar()])),
    ], { flush: true, testid: 'diffs' }));
  }

  await Promise.all([loadCalendar(), loadDay(), loadDiffs()]);
}

function runSummary(run, fetches) {
  const s = run.summary || {};
  const classes = Object.entries(s.classes || {});
  const failed = (s.fetches || []).filter((f) => f.status === 'FAILED');
  const arrivals = (s.arrivals && s.arrivals.items) || [];
  const diffTotal = classes.filter(([k]) => k !== 'matched' && k !== 'no_money').reduce((a, [, n]) => a + n, 0);
  return h('div', { class: 'stack', dataset: { testid: 'run', runId: run.id } },
    h('div', { class: `alert ${run.status !== 'DONE' ? 'bad' : (!s.complete ? 'warn' : (diffTotal ? 'bad' : 'ok'))}` },
      h('span', { class: 'grow' }, run.status !== 'DONE' ? L(`对账失败：${run.error || ''}`, `Run failed: ${run.error || ''}`)
        : !s.complete ? L('数据不全：部分账单未能获取', 'Incomplete: some bills could not be fetched')
          : diffTotal ? L(`发现差异 ${diffTotal} 笔`, `${diffTotal} difference(s)`) : L('已平：三方账单一致', 'Balanced: every source agrees')),
      h('span', { class: 'muted' }, `${run.mode.toUpperCase()} · ${datetime(run.finished_at || run.started_at)} · ${run.actor || ''}`)),
    table({ testid: 'run-classes', rows: classes.map(([k, n]) => ({ k, n })), empty: L('无交易', 'No transactions'), columns: [
      { title: L('分类', 'Class'), render: (r) => tag(label(DIFF_CLASS, r.k), r.k === 'matched' ? 'ok' : (r.k === 'no_money' ? '' : 'bad')) },
      { title: L('笔数', 'Count'), num: true, render: (r) => int(r.n) },
    ] }),
    table({ testid: 'run-totals', rows: Object.entries(s.totals || {}).map(([k, v]) => ({ k, ...v })), columns: [
      { title: L('账单来源', 'Source'), render: (r) => label(SOURCES, r.k) },
      { title: L('笔数', 'Lines'), num: true, render: (r) => int(r.count) },
      { title: L('收款(元)', 'Paid'), num: true, render: (r) => yuan(r.paid) },
      { title: L('退款(元)', 'Refunded'), num: true, render: (r) => yuan(r.refunded) },
      { title: L('净额(元)', 'Net'), num: true, render: (r) => yuan((r.paid || 0) - (r.refunded || 0)) },
    ] }),
    failed.length ? h('div', { class: 'alert warn' }, h('span', { class: 'grow' }, L('未能获取的账单', 'Bills not fetched')),
      failed.map((f) => h('div', null, `${f.source}:${f.source_id} ${f.bill_type || ''} — ${f.error || ''}`))) : null,
    arrivals.length ? table({ testid: 'arrivals', rows: arrivals, columns: [
      { title: L('渠道', 'Channel'), render: (a) => channelLabel(a.channel) },
      { title: L('应到账(元)', 'Expected'), num: true, render: (a) => yuan(a.expected) },
      { title: L('实到账(元)', 'Arrived'), num: true, render: (a) => yuan(a.arrived) },
      { title: L('到账日', 'Day'), key: 'bank_day' },
      { title: L('状态', 'Status'), render: (a) => tag(a.status === 'arrived' ? L('已到账', 'Arrived') : a.status === 'pending' ? L('待到账', 'Pending') : label(DIFF_CLASS, a.status),
        a.status === 'arrived' ? 'ok' : a.status === 'pending' ? 'warn' : 'bad') },
    ] }) : null,
    h('details', null, h('summary', null, L(`账单获取记录 (${fetches.length})`, `Fetch log (${fetches.length})`)), table({ rows: fetches, columns: [
      { title: L('时间', 'Time'), render: (f) => datetime(f.at) },
      { title: L('来源', 'Source'), render: (f) => `${label(SOURCES, f.source)} ${f.source_id}` },
      { title: L('账单类型', 'Bill type'), key: 'bill_type' },
      { title: L('结果', 'Outcome'), render: (f) => tag(f.status, f.status === 'OK' ? 'ok' : f.status === 'FAILED' ? 'bad' : '') },
      { title: L('笔数', 'Lines'), num: true, render: (f) => int(f.line_count) },
      { title: L('收款(元)', 'Paid'), num: true, render: (f) => yuan(f.total_paid) },
      { title: L('错误', 'Error'), key: 'error' },
    ] })));
}

function diffTable(items, ctx, onChanged) {
  return table({
    testid: 'diff-table', rows: items,
    empty: L('没有差异', 'No differences'),
    rowClass: (d) => (d.status === 'OPEN' ? (d.confirmed ? 'row-bad' : 'row-warn') : undefined),
    columns: [
      { title: L('差异类型', 'Class'), render: (d) => tag(label(DIFF_CLASS, d.class), 'bad') },
      { title: L('交易号', 'Transaction'), render: (d) => h('a', { class: 'mono', onClick: () => diffDrawer(d.id, ctx, onChanged) }, d.txn_id) },
      { title: L('类型', 'Kind'), render: (d) => ({ payment: L('支付', 'payment'), refund: L('退款', 'refund'), bank: L('到账', 'settlement'), ins: L('医保', 'insurance') }[d.kind] || d.kind) },
      { title: L('渠道', 'Channel'), render: (d) => channelLabel(d.channel) },
      { title: L('HIS(元)', 'HIS'), num: true, render: (d) => yuan(d.his_amount) },
      { title: L('平台(元)', 'Platform'), num: true, render: (d) => yuan(d.platform_amount ?? d.bank_amount) },
      { title: L('渠道(元)', 'Channel'), num: true, render: (d) => yuan(d.channel_amount) },
      { title: L('确认', 'Confirmed'), render: (d) => (d.confirmed ? tag(L('已确认', 'confirmed'), 'bad') : tag(L('待确认', 'in window'), 'warn')) },
      { title: L('状态', 'Status'), render: (d) => statusTag(DIFF_STATUS, d.status) },
      { title: L('操作', 'Actions'), cls: 'actions', render: (d) => h('span', null,
        h('button', { class: 'link', onClick: () => diffDrawer(d.id, ctx, onChanged) }, L('详情', 'Details')),
        d.status === 'OPEN' && ctx.can('recon.handle') ? h('button', { class: 'link', dataset: { testid: 'mark' }, onClick: () => markDialog(d, onChanged) }, L('标记', 'Mark')) : null) },
    ],
  });
}

async function markDialog(d, onChanged) {
  const out = await dialog({ title: L(`标记差异 ${d.txn_id}`, `Mark ${d.txn_id}`), testid: 'mark-dialog',
    message: L('账单本身不会被修改：标记与说明记入差异历史与操作日志。', 'The bills are never edited: the mark and note go to the history and the operation log.'),
    fields: [
      { name: 'action', label: L('处理方式', 'Action'), type: 'select', required: true, options: Object.keys(MARKS).map((k) => [k, label(MARKS, k)]) },
      { name: 'note', label: L('说明', 'Note'), type: 'textarea', required: true, minLength: 2 },
    ],
    onSubmit: (v) => post(`/admin/recon/diffs/${encodeURIComponent(d.id)}/mark`, { action: v.action, note: v.note }) });
  if (out) { toast(L('已标记', 'Marked')); if (onChanged) onChanged(); }
}

async function diffDrawer(id, ctx, onChanged) {
  const dr = drawer(L('差异详情', 'Difference'), async () => null, { testid: 'diff-drawer' });
  let d;
  try { d = await get(`/admin/recon/diffs/${encodeURIComponent(id)}`); } catch (e) { dr.fill(errorBox(e)); return; }
  const yes = (b) => (b ? tag(L('有', 'yes'), 'ok') : tag(L('无', 'no'), 'bad'));
  const actions = [];
  if (d.status === 'OPEN' && ctx.can('recon.handle')) {
    actions.push(h('button', { onClick: () => markDialog(d, () => { if (onChanged) onChanged(); diffDrawer(id, ctx, onChanged); }) }, L('标记处理', 'Mark')));
    if (d.class === 'ins_centre_only') actions.push(reverseButton(d, () => { if (onChanged) onChanged(); diffDrawer(id, ctx, onChanged); }));
  }
  if (d.case_id && ctx.can('cases.view')) actions.push(h('button', { onClick: () => caseDrawer(d.case_id, ctx) }, L('查看单边账', 'Open the case')));
  dr.fill(h('div', null,
    h('section', null, h('h3', null, L('差异', 'Difference')), kv([
      [L('日期', 'Day'), d.day],
      [L('差异类型', 'Class'), tag(label(DIFF_CLASS, d.class), 'bad')],
      [L('状态', 'Status'), statusTag(DIFF_STATUS, d.status)],
      [L('确认', 'Confirmed'), L(d.confirmed_zh || '', d.confirmed ? 'confirmed' : 'within the matching window')],
      [L('交易号', 'Transaction'), h('span', { class: 'mono' }, d.txn_id)],
      [L('渠道', 'Channel'), channelLabel(d.channel)],
      [L('处理结果', 'Resolution'), d.resolution ? L(d.resolution_zh || d.resolution, d.resolution) : null],
      [L('处理人', 'Resolved by'), d.resolved_by],
      [L('说明', 'Note'), d.note],
      [L('另一日', 'Other day'), d.other_day],
      [L('单边账', 'Case'), d.case_id],
    ])),
    h('section', null, h('h3', null, L('各方账单', 'The sources')), table({ testid: 'diff-lines', rows: [
      { src: L('HIS', 'HIS'), present: d.in_his, amount: d.his_amount, ref: d.his_serial, status: d.his_status },
      { src: L('平台', 'Platform'), present: d.in_platform, amount: d.platform_amount, ref: d.txn_id, status: d.platform_status },
      { src: L('渠道', 'Channel'), present: d.in_channel, amount: d.channel_amount, ref: d.channel_trade_no, status: null },
      d.bank_amount !== null && d.bank_amount !== undefined ? { src: L('银行到账', 'Bank'), present: true, amount: d.bank_amount, ref: d.channel_trade_no, status: null } : null,
    ].filter(Boolean), columns: [
      { title: L('来源', 'Source'), key: 'src' },
      { title: L('有记录', 'Present'), render: (r) => yes(r.present) },
      { title: L('金额(元)', 'Amount'), num: true, render: (r) => yuan(r.amount) },
      { title: L('流水号', 'Reference'), render: (r) => (r.ref ? h('span', { class: 'mono' }, r.ref) : '—') },
      { title: L('状态', 'Status'), key: 'status' },
    ] })),
    d.order_ref ? h('section', null, h('h3', null, L('业务单', 'Order')), h('div', { class: 'mono' }, d.order_ref)) : null,
    h('section', null, h('h3', null, L('历史', 'History')), (d.history || []).length
      ? h('ul', { class: 'timeline' }, d.history.map((e) => h('li', null, h('div', null, h('b', null, e.action), e.actor ? ` · ${e.actor}` : ''),
        h('div', { class: 'when' }, datetime(e.at || e.created_at)),
        e.detail && Object.keys(e.detail).length ? h('div', { class: 'muted mono' }, JSON.stringify(e.detail)) : null)))
      : h('div', { class: 'muted' }, L('无', 'None'))),
  ), actions);
}

function reverseButton(d, onChanged) {
  return h('button', { class: 'small danger', dataset: { testid: 'reverse' }, onClick: async () => {
    const out = await dialog({ title: L('申请冲正', 'Apply for reversal'), testid: 'reverse-dialog',
      message: L(`医保中心有、医院无的结算 ${d.txn_id} 将在审核通过后向中心冲正。`, `Settlement ${d.txn_id}, at the centre only, is reversed there after approval.`),
      fields: [{ name: 'reason', label: L('原因', 'Reason'), type: 'textarea', required: true, minLength: 2 }],
      onSubmit: (v) => post(`/admin/recon/diffs/${encodeURIComponent(d.id)}/reverse`, { reason: v.reason }) });
    if (out) { toast(L(`已提交冲正申请，审批单 ${out.approval_id}`, `Reversal application ${out.approval_id} submitted`)); if (onChanged) onChanged(); }
  } }, L('冲正', 'Reverse'));
}

// --- 医保对账 ---------------------------------------------------------------------------------
async function insurance(box, params, ctx) {
  const t = today();
  const begin = params.begin || t;
  const end = params.end || begin;
  const resultBox = h('div', { class: 'stack' });
  const form = h('form', { class: 'filters', onSubmit: (e) => {
    e.preventDefault();
    ctx.navigate('recon', { tab: 'insurance', begin: form.begin.value, end: form.end.value });
  } },
  h('label', null, L('开始日期', 'From'), h('input', { type: 'date', name: 'begin', value: begin, max: t })),
  h('label', null, L('结束日期', 'To'), h('input', { type: 'date', name: 'end', value: end, max: t })),
  h('div', { class: 'actions' }, h('button', { type: 'submit' }, L('查看', 'Show')),
    ctx.can('recon.run') ? h('button', { class: 'primary', type: 'button', dataset: { testid: 'run-insurance' }, onClick: (e) => act(e.currentTarget, async () => {
      const run = await post('/admin/recon/insurance/runs', { begin: form.begin.value, end: form.end.value });
      toast(L('医保对账完成', 'Insurance reconciliation done'));
      await showRun(run);
    }) }, L('医保对账', 'Reconcile insurance')) : null));
  box.appendChild(panel(L('医保对账（3201 总额 → 3202 明细）', 'Insurance (3201 totals → 3202 details)'), form, { flush: true }));
  box.appendChild(resultBox);

  async function showRun(run) {
    if (!run) {
      mount(resultBox, panel('', h('div', { class: 'muted' }, L('该期间尚无医保对账记录。', 'No insurance reconciliation for this period yet.'))));
      return;
    }
    const s = run.summary || {};
    const diffs = await get('/admin/recon/diffs', { date: s.begin || begin, class: INS, status: undefined, limit: 500 })
      .catch(() => ({ items: [] }));
    if (!ctx.isCurrent()) return;
    const ofGroup = (g) => (diffs.items || []).filter((d) => (d.order_ref || '').split('|').slice(1).join('|') === `${g.insutype}|${g.clr_type}|${g.setl_optins}`);
    const groups = s.groups || [];
    const detail = h('div');
    const showGroup = (g) => mount(detail, panel(L(`差异结算：险种 ${g.insutype} 清算类别 ${g.clr_type || '—'} 经办机构 ${g.setl_optins || '—'}`,
      `Differing settlements: insutype ${g.insutype}, clr_type ${g.clr_type || '—'}, institution ${g.setl_optins || '—'}`),
    table({ testid: 'ins-diffs', rows: ofGroup(g), empty: L('无差异结算', 'No differing settlements'), rowClass: (d) => (d.status === 'OPEN' ? 'row-bad' : undefined), columns: [
      { title: L('结算ID', 'setl_id'), render: (d) => h('span', { class: 'mono' }, d.txn_id) },
      { title: L('差异类型', 'Class'), render: (d) => tag(label(DIFF_CLASS, d.class), 'bad') },
      { title: L('就诊ID', 'mdtrt_id'), key: 'his_serial' },
      { title: L('医院金额(元)', 'Hospital'), num: true, render: (d) => yuan(d.his_amount) },
      { title: L('中心金额(元)', 'Centre'), num: true, render: (d) => yuan(d.channel_amount) },
      { title: L('类型', 'Kind'), render: (d) => (d.platform_status === 'reversal' ? L('冲销', 'reversal') : L('结算', 'settlement')) },
      { title: L('状态', 'Status'), render: (d) => statusTag(DIFF_STATUS, d.status) },
      { title: L('操作', 'Actions'), cls: 'actions', render: (d) => h('span', null,
        h('button', { class: 'link', onClick: () => diffDrawer(d.id, ctx, () => showRun(run)) }, L('详情', 'Details')),
        d.status === 'OPEN' && d.class === 'ins_centre_only' && ctx.can('recon.handle') ? reverseButton(d, () => showRun(run)) : null) },
    ] }), { flush: true, testid: 'ins-group' }));
    mount(resultBox,
      h('div', { class: `alert ${s.balanced ? 'ok' : 'bad'}` }, h('span', { class: 'grow' }, s.balanced
        ? L(`${s.begin} ~ ${s.end} 医保对账已平`, `${s.begin} – ${s.end}: insurance balanced`)
        : L(`${s.begin} ~ ${s.end} 医保对账有差异：${s.differences || 0} 笔结算`, `${s.begin} – ${s.end}: ${s.differences || 0} differing settlement(s)`)),
      h('span', { class: 'muted' }, `${s.centre || ''} · ${datetime(run.finished_at || run.started_at)}`)),
      panel(L('对总账 (3201)', 'Totals (3201)'), table({ testid: 'ins-groups', rows: groups, empty: L('该期间无医保结算', 'No settlements in this period'),
        rowClass: (g) => (g.balanced ? undefined : 'row-bad'), columns: [
          { title: L('险种', 'insutype'), key: 'insutype' },
          { title: L('清算类别', 'clr_type'), key: 'clr_type' },
          { title: L('经办机构', 'Institution'), key: 'setl_optins' },
          { title: L('笔数', 'Count'), num: true, render: (g) => int(g.count) },
          { title: L('医疗费总额(元)', 'Total'), num: true, render: (g) => yuan(g.medfee_sumamt) },
          { title: L('基金支付(元)', 'Fund'), num: true, render: (g) => yuan(g.fund_pay_sumamt) },
          { title: L('个人账户(元)', 'Account'), num: true, render: (g) => yuan(g.acct_pay) },
          { title: L('结果', 'Result'), render: (g) => (g.balanced ? tag(L('平', 'balanced'), 'ok') : tag(L('不平', 'differs'), 'bad')) },
          { title: L('说明', 'Description'), key: 'description' },
          { title: L('明细', 'Details'), cls: 'actions', render: (g) => (g.balanced ? '—'
            : h('button', { class: 'link', dataset: { testid: 'ins-drill' }, onClick: () => showGroup(g) },
              L(`查看差异 (${ofGroup(g).length})`, `Differences (${ofGroup(g).length})`))) },
        ] }), { flush: true }),
      detail);
    const firstBad = groups.find((g) => !g.balanced);
    if (firstBad) showGroup(firstBad);
  }

  const runs = await get('/admin/recon/runs', { date: begin, limit: 20 });
  if (!ctx.isCurrent()) return;
  const last = (runs.items || []).find((r) => r.mode === 'ins' && r.summary && r.summary.end === end)
    || (runs.items || []).find((r) => r.mode === 'ins');
  await showRun(last || null);
}


// --- 账单导入: a business system's bill file, the bank's statement ----------------------------------
const BILL_TYPES = [['outpatient_registration', '门诊挂号', 'Outpatient registration'], ['outpatient_settlement', '门诊缴费', 'Outpatient settlement'],
  ['inpatient_deposit', '住院预交金', 'Inpatient deposit'], ['inpatient_settlement', '住院结算', 'Inpatient settlement'],
  ['exam', '体检', 'Physical exam'], ['other', '其他', 'Other']];

function fileField(name, testid) {
  return h('label', null, L('文件 (CSV / Excel)', 'File (CSV / Excel)'),
    h('input', { type: 'file', name, accept: '.csv,.xlsx,text/csv', dataset: { testid } }));
}

async function imports(box, params, ctx) {
  const t = today();
  const systems = ctx.can('config.view') ? ((await get('/admin/his/systems').catch(() => ({ items: [] }))).items || []) : [];
  if (!ctx.isCurrent()) return;
  const hisResult = h('div');
  const bankResult = h('div');
  const picked = (form, name) => {
    const f = form.querySelector(`input[name=${name}]`).files[0];
    if (!f) throw new Error(L('请选择文件', 'Choose a file'));
    return f;
  };
  const hisForm = h('form', { class: 'filters', dataset: { testid: 'import-his' } },
    systems.length
      ? h('label', null, L('业务系统', 'Business system'), h('select', { name: 'system' },
        systems.map((x) => h('option', { value: x.id }, `${x.name || x.id} (${x.id})`))))
      : h('label', null, L('业务系统编码', 'Business system id'), h('input', { name: 'system', value: params.system || 'his' })),
    h('label', null, L('账单日期', 'Bill day'), h('input', { type: 'date', name: 'date', value: params.date || t, max: t })),
    h('label', null, L('账单类型', 'Bill type'), h('select', { name: 'bill_type' },
      h('option', { value: '' }, L('按文件中的类型', 'As in the file')),
      BILL_TYPES.map(([v, zh, en]) => h('option', { value: v }, L(zh, en))))),
    fileField('file', 'his-file'),
    h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit', dataset: { testid: 'import-his-submit' } }, L('导入', 'Import'))));
  hisForm.addEventListener('submit', (e) => {
    e.preventDefault();
    importing(hisForm, hisResult, async () => {
      const file = picked(hisForm, 'file');
      const system = hisForm.system.value.trim();
      const out = await upload(`/admin/his/systems/${encodeURIComponent(system)}/bill-import`,
        { date: hisForm.date.value, bill_type: hisForm.bill_type.value, filename: file.name }, file);
      mount(hisResult, importAnswer(L(`${out.system} ${hisForm.date.value} 账单已导入`, `${out.system} ${hisForm.date.value}: imported`), table({
        testid: 'import-his-result', rows: out.bills || [], columns: [
          { title: L('账单日期', 'Day'), key: 'day' },
          { title: L('账单类型', 'Bill type'), render: (b) => { const x = BILL_TYPES.find((y) => y[0] === b.bill_type); return x ? L(x[1], x[2]) : b.bill_type; } },
          { title: L('笔数', 'Lines'), num: true, render: (b) => int(b.count) },
          { title: L('收款(元)', 'Paid'), num: true, render: (b) => yuan(b.paid) },
          { title: L('退款(元)', 'Refunded'), num: true, render: (b) => yuan(b.refunded) },
          { title: L('净额(元)', 'Net'), num: true, render: (b) => yuan(b.net) },
        ] })));
      toast(L('账单已导入', 'Bill imported'));
    });
  });
  const bankForm = h('form', { class: 'filters', dataset: { testid: 'import-bank' } },
    h('label', null, L('收款账户', 'Account'), h('input', { name: 'account', value: params.account || '', placeholder: L('银行账号', 'account number') })),
    fileField('file', 'bank-file'),
    h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit', dataset: { testid: 'import-bank-submit' } }, L('导入', 'Import'))));
  bankForm.addEventListener('submit', (e) => {
    e.preventDefault();
    importing(bankForm, bankResult, async () => {
      const account = bankForm.account.value.trim();
      if (!account) throw new Error(L('请填写收款账户', 'Enter the account'));
      const file = picked(bankForm, 'file');
      const out = await upload('/admin/recon/bank-statements', { account, filename: file.name }, file);
      mount(bankResult, importAnswer(L(`账户 ${out.account} 的流水已导入 ${out.days.length} 天`, `Account ${out.account}: ${out.days.length} day(s) imported`), table({
        testid: 'import-bank-result', rows: out.days || [], columns: [
          { title: L('入账日期', 'Day'), render: (d) => h('a', { href: `#/recon?date=${d.day}` }, d.day) },
          { title: L('入账笔数', 'Credits'), num: true, render: (d) => int(d.line_count) },
          { title: L('入账金额(元)', 'Credited'), num: true, render: (d) => yuan(d.total_paid) },
          { title: L('结果', 'Outcome'), render: (d) => tag(d.status, d.status === 'OK' ? 'ok' : 'bad') },
        ] })));
      toast(L('银行流水已导入', 'Statement imported'));
    });
  });
  box.appendChild(h('div', { class: 'grid cols-2e' },
    panel(L('HIS/业务系统账单导入', 'Business system bill'), [
      h('div', { class: 'muted panel-body' }, L('无接口的业务系统导出当日账单 (CSV/Excel，格式见文档)，导入后参与对账；同一日同一类型再次导入会替换。',
        'A system with no interface exports the day\'s bill (CSV/Excel, documented format); importing the same day and type again replaces it.')),
      hisForm, hisResult], { flush: true }),
    panel(L('银行流水导入', 'Bank statement'), [
      h('div', { class: 'muted panel-body' }, L('网银导出的收款账户流水 (CSV/Excel)，用于核对渠道结算资金到账；同一日再次导入会替换。',
        'The account statement exported from online banking (CSV/Excel), for the fund-arrival check; a day imported again is replaced.')),
      bankForm, bankResult], { flush: true })));
}

// Run an import from its form: the button waits, a refusal is shown in full (every row's problem).
async function importing(form, resultBox, fn) {
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    await fn();
  } catch (e) {
    const p = (e && e.problem) || {};
    const rows = (p.errors || []).map((x) => (typeof x === 'string' ? x : Object.values(x).filter((v) => v !== null && v !== '').join(' · ')));
    mount(resultBox, h('div', { class: 'panel-body' }, h('div', { class: 'alert bad', dataset: { testid: 'import-error' } },
      h('div', null, h('div', { class: 'grow' }, e.message || String(e)), p.detail ? h('div', null, p.detail) : null,
        rows.length ? h('ul', null, rows.slice(0, 30).map((r) => h('li', null, r))) : null))));
  } finally {
    button.disabled = false;
  }
}

function importAnswer(title, body) {
  return h('div', { class: 'stack panel-body' }, h('div', { class: 'alert ok' }, h('span', { class: 'grow' }, title)), body);
}
