// 系统管理: users, roles and permissions (checkbox matrix), organisation (campuses and departments),
// operation log with chain check, export log, scheduled jobs with reconciliation runs and the fetch log,
// sessions, the data dictionary (code tables).
import { h, mount } from '../dom.js';
import { get, post, put, del } from '../api.js';
import { L } from '../i18n.js';
import { datetime, today, addDays, int, label, DAY_STATE } from '../fmt.js';
import { table, tabs, tag, act, dialog, toast, pager, filterBar, confirm, kv, panel } from '../ui.js';

const TABS = [
  ['users', '用户', 'Users', 'system.users'], ['roles', '角色权限', 'Roles & permissions', 'system.roles'],
  ['org', '组织机构', 'Organisation', 'config.view'],
  ['oplog', '操作日志', 'Operation log', 'oplog.view'], ['exports', '导出日志', 'Export log', 'oplog.view'],
  ['jobs', '定时任务', 'Scheduled jobs', 'config.view'], ['sessions', '会话', 'Sessions', null],
  ['dicts', '数据字典', 'Data dictionary', null],
];

export async function render(box, params, ctx) {
  const allowed = TABS.filter((x) => x[3] === null || ctx.can(x[3]));
  const tab = allowed.some((x) => x[0] === params.tab) ? params.tab : (allowed[0] && allowed[0][0]);
  const body = h('div');
  box.appendChild(h('div', { class: 'panel' }, tabs(allowed.map(([k, zh, en]) => ({ key: k, title: L(zh, en) })), tab,
    (k) => ctx.navigate('system', { tab: k })), body));
  if (!tab) return;
  const load = async () => mount(body, await VIEWS[tab](ctx, params, load));
  await load();
}

function yesNo(b, yes, no, kind = 'ok') { return b ? tag(yes, kind) : tag(no, ''); }

async function roleOptions() {
  const res = await get('/system/roles');
  return res.items || [];
}

const VIEWS = {
  async users(ctx, params, reload) {
    const [res, roles, deps] = await Promise.all([get('/system/users'), roleOptions(),
      get('/system/departments').catch(() => ({ items: [] }))]);
    const roleName = (id) => { const r = roles.find((x) => x.id === id); return r ? r.name : id; };
    const depName = (id) => { const d = (deps.items || []).find((x) => x.id === id); return d ? d.name : id; };
    // a department from the organisation's list; a name typed in before the list existed is kept
    const depField = (current) => ((deps.items || []).length
      ? { name: 'department', label: L('科室/部门', 'Department'), type: 'select', value: current || '',
        options: [['', L('无', 'None')], ...deps.items.map((d) => [d.id, `${d.name} (${d.id})`]),
          ...(current && !deps.items.some((d) => d.id === current) ? [[current, current]] : [])] }
      : { name: 'department', label: L('科室', 'Department'), value: current || '' });
    const roleFields = (current = []) => roles.map((r) => ({ name: `role:${r.id}`, label: `${r.name} (${r.id})`, type: 'checkbox', value: current.includes(r.id) }));
    const userDialog = async (u) => {
      const out = await dialog({
        title: u ? L(`修改用户 ${u.username}`, `Edit ${u.username}`) : L('新增用户', 'Add user'), testid: 'user-dialog',
        fields: [
          u ? null : { name: 'username', label: L('用户名', 'Username'), required: true },
          { name: 'display_name', label: L('姓名', 'Name'), required: true, value: u ? u.display_name : '' },
          depField(u ? u.department : ''),
          { name: 'password', label: u ? L('重置密码（留空不改）', 'New password (blank: unchanged)') : L('初始密码（留空自动生成）', 'Initial password (blank: generated)'),
            type: 'password', hint: L('首次登录须修改', 'must be changed at first login') },
          ...roleFields(u ? u.roles : []),
        ].filter(Boolean),
        onSubmit: (v) => {
          const picked = roles.filter((r) => v[`role:${r.id}`]).map((r) => r.id);
          if (!picked.length) throw new Error(L('请至少选择一个角色', 'Pick at least one role'));
          const body = { display_name: v.display_name, department: v.department || null, roles: picked };
          if (v.password) { body.password = v.password; body.must_change_password = true; }
          if (u) return put(`/system/users/${encodeURIComponent(u.username)}`, body);
          return post('/system/users', { username: v.username, ...body });
        },
      });
      if (out && out.password) {
        // a generated initial password is answered once: show it to hand over
        await dialog({ title: L('初始密码（仅显示一次）', 'Initial password (shown once)'), testid: 'password-shown',
          message: h('div', null, L(`用户 ${out.user.username} 的初始密码：`, `Initial password of ${out.user.username}: `),
            h('code', { class: 'otp-uri' }, out.password)) });
      }
      if (out) { toast(L('已保存', 'Saved')); reload(); }
    };
    const userAction = (u, text, body, cls = '') => h('button', { class: `link ${cls}`.trim(), onClick: (e) => act(e.currentTarget, async () => {
      const out = await put(`/system/users/${encodeURIComponent(u.username)}`, body);
      if (body.reset_totp) toast(L('已重置动态口令，用户下次登录时重新绑定', 'TOTP reset: the user enrols again at the next login'));
      reload();
      return out;
    }, L('已保存', 'Saved')) }, text);
    return h('div', null,
      h('div', { class: 'filters' }, h('button', { class: 'primary', dataset: { testid: 'add-user' }, onClick: () => userDialog(null) }, L('新增用户', 'Add user'))),
      table({ testid: 'users', rows: res.items || [], rowClass: (u) => (u.locked ? 'row-bad' : (!u.enabled ? 'row-warn' : undefined)), columns: [
        { title: L('用户名', 'Username'), render: (u) => h('span', { class: 'mono' }, u.username) },
        { title: L('姓名', 'Name'), key: 'display_name' },
        { title: L('科室', 'Department'), render: (u) => (u.department ? depName(u.department) : '—') },
        { title: L('角色', 'Roles'), render: (u) => (u.roles || []).map((r) => tag(roleName(r), 'info')) },
        { title: L('状态', 'State'), render: (u) => [yesNo(u.enabled, L('启用', 'enabled'), L('停用', 'disabled')), u.locked ? tag(L('已锁定', 'locked'), 'bad') : null] },
        { title: L('动态口令', 'TOTP'), render: (u) => yesNo(u.totp_enrolled, L('已绑定', 'enrolled'), L('未绑定', 'not enrolled')) },
        { title: L('最近登录', 'Last login'), render: (u) => h('span', null, datetime(u.last_login_at), u.last_login_ip ? h('div', { class: 'muted' }, u.last_login_ip) : null) },
        { title: L('操作', 'Actions'), cls: 'actions', render: (u) => h('span', null,
          h('button', { class: 'link', onClick: () => userDialog(u) }, L('修改', 'Edit')),
          userAction(u, u.enabled ? L('停用', 'Disable') : L('启用', 'Enable'), { enabled: !u.enabled }),
          u.locked ? userAction(u, L('解锁', 'Unlock'), { unlock: true }) : null,
          userAction(u, L('重置口令', 'Reset TOTP'), { reset_totp: true })) },
      ] }));
  },

  async roles(ctx, params, reload) {
    const [res, perms] = await Promise.all([get('/system/roles'), get('/system/permissions')]);
    const roles = res.items || [];
    const list = perms.items || perms.permissions || [];
    const code = (p) => p.code || p.name;
    const draft = new Map(roles.map((r) => [r.id, new Set(r.permissions || [])]));
    const dirty = new Set();
    const save = h('button', { class: 'primary', disabled: true, dataset: { testid: 'save-roles' }, onClick: (e) => act(e.currentTarget, async () => {
      for (const id of dirty) await put(`/system/roles/${encodeURIComponent(id)}`, { permissions: [...draft.get(id)] });
      reload();
    }, L('权限已保存', 'Permissions saved')) }, L('保存修改', 'Save changes'));
    const addRole = async () => {
      const out = await dialog({ title: L('新增角色', 'Add role'), fields: [
        { name: 'id', label: L('角色编码', 'Role id'), required: true, placeholder: 'e.g. window_lead' },
        { name: 'name', label: L('名称', 'Name'), required: true },
        { name: 'description', label: L('说明', 'Description') },
        { name: 'approval_roles', label: L('审核角色（逗号分隔，如 finance）', 'Approval roles (comma-separated, e.g. finance)') },
      ], onSubmit: (v) => post('/system/roles', { id: v.id, name: v.name, description: v.description || null,
        permissions: [], approval_roles: v.approval_roles.split(/[,，\s]+/).filter(Boolean) }) });
      if (out) { toast(L('已新增角色，请勾选权限', 'Role added: tick its permissions')); reload(); }
    };
    let group = null;
    const rows = [];
    list.forEach((p) => {
      if (p.group !== group) { group = p.group; rows.push({ group: p.group_zh || p.group, group_en: p.group_en || p.group }); }
      rows.push(p);
    });
    const matrix = h('div', { class: 'table-wrap' }, h('table', { class: 'data matrix', dataset: { testid: 'role-matrix' } },
      h('thead', null, h('tr', null, h('th', null, L('权限', 'Permission')), roles.map((r) => h('th', null, r.name, h('div', { class: 'muted mono' }, r.id))))),
      h('tbody', null, rows.map((p) => (p.code === undefined && p.name === undefined
        ? h('tr', { class: 'total' }, h('td', { colspan: roles.length + 1 }, L(p.group, p.group_en)))
        : h('tr', null, h('td', null, L(p.label_zh || p.description_zh || code(p), p.label_en || p.description_en || code(p)), h('div', { class: 'muted mono' }, code(p))),
          roles.map((r) => h('td', null, h('input', { type: 'checkbox', checked: draft.get(r.id).has(code(p)),
            disabled: r.all_permissions || !ctx.can('system.roles'), dataset: { role: r.id, perm: code(p) },
            title: r.all_permissions ? L('管理员拥有全部权限', 'Administrators have every permission') : '',
            onChange: (e) => {
              if (e.target.checked) draft.get(r.id).add(code(p)); else draft.get(r.id).delete(code(p));
              dirty.add(r.id);
              save.disabled = false;
            } }))))))),
      h('tfoot', null, h('tr', null, h('td', null, L('审核角色', 'Approval roles')),
        roles.map((r) => h('td', null, (r.approval_roles || []).map((a) => tag(a, 'warn'))))))));
    return h('div', null, h('div', { class: 'filters' }, save, h('button', { onClick: addRole }, L('新增角色', 'Add role')),
      h('span', { class: 'muted' }, L('勾选后点击「保存修改」。菜单与按钮按权限显示，服务端同样校验。', 'Tick, then "Save changes". Menus and buttons follow the permissions; the server checks them too.'))), matrix);
  },

  async oplog(ctx, params) {
    const t = today();
    const values = { user: params.user || '', action: params.action || '', begin: params.begin || addDays(t, -6), end: params.end || t };
    const limit = parseInt(params.limit || '50', 10);
    const offset = parseInt(params.offset || '0', 10);
    const go = (v, off = 0, lim = limit) => ctx.navigate('system', { tab: 'oplog', ...v, offset: off || undefined, limit: lim });
    const res = await get('/system/oplog', { ...values, limit, offset });
    const result = h('span');
    const verify = h('button', { dataset: { testid: 'verify-chain' }, onClick: (e) => act(e.currentTarget, async () => {
      const out = await get('/system/oplog/verify');
      mount(result, out.ok
        ? tag(L(`校验通过：${out.checked} 条记录完整`, `Chain intact: ${out.checked} rows verified`), 'ok')
        : tag(L(`校验失败：第 ${out.broken.id} 条 ${out.broken.reason_zh || ''}`, `Broken at row ${out.broken.id}: ${out.broken.reason}`), 'bad'));
    }) }, L('校验日志链', 'Verify chain'));
    return h('div', null,
      filterBar([
        { name: 'user', label: L('用户', 'User') },
        { name: 'action', label: L('操作', 'Action'), placeholder: 'login, case.refund …' },
        { name: 'begin', label: L('开始日期', 'From'), type: 'date' },
        { name: 'end', label: L('结束日期', 'To'), type: 'date' },
      ], values, (v) => go(v), { extra: [verify, result], resetValues: { begin: addDays(t, -6), end: t } }),
      table({ testid: 'oplog', rows: res.items || [], columns: [
        { title: '#', key: 'id' },
        { title: L('时间', 'Time'), render: (r) => h('span', { class: 'nowrap' }, datetime(r.at)) },
        { title: L('用户', 'User'), key: 'user' },
        { title: 'IP', key: 'ip' },
        { title: L('操作', 'Action'), render: (r) => h('span', null, L(r.action_zh || r.action, r.action), h('div', { class: 'muted mono' }, r.action)) },
        { title: L('对象', 'Target'), render: (r) => (r.target ? h('span', { class: 'mono' }, r.target) : '—') },
        { title: L('详情', 'Detail'), render: (r) => (r.detail && Object.keys(r.detail).length ? h('span', { class: 'mono' }, JSON.stringify(r.detail)) : '—') },
        { title: L('哈希', 'Hash'), render: (r) => (r.hash ? h('span', { class: 'mono muted', title: r.hash }, r.hash.slice(0, 10)) : '—') },
      ] }),
      pager({ total: res.total || 0, limit, offset, onChange: (off, lim) => go(values, off, lim) }));
  },

  async org(ctx, params, reload) {
    const edit = ctx.can('config.edit');
    const [campuses, deps] = await Promise.all([get('/admin/campuses'), get('/system/departments')]);
    const campusName = (id) => { const c = (campuses.items || []).find((x) => x.id === id); return c ? c.name : id; };
    const depName = (id) => { const d = (deps.items || []).find((x) => x.id === id); return d ? d.name : id; };
    const campusDialog = async (c) => {
      const out = await dialog({ title: c ? L('修改院区', 'Edit campus') : L('新增院区', 'Add campus'), testid: 'campus-dialog', fields: [
        c ? null : { name: 'id', label: L('院区编码', 'Code'), required: true },
        { name: 'name', label: L('名称', 'Name'), required: true, value: c ? c.name : '' },
      ].filter(Boolean), onSubmit: (v) => put(`/admin/campuses/${encodeURIComponent(c ? c.id : v.id)}`, { name: v.name }) });
      if (out) { toast(L('已保存', 'Saved')); reload(); }
    };
    const depDialog = async (d) => {
      const out = await dialog({ title: d ? L(`修改科室/部门 ${d.id}`, `Edit department ${d.id}`) : L('新增科室/部门', 'Add department'),
        testid: 'department-dialog', fields: [
          d ? null : { name: 'id', label: L('编码', 'Code'), required: true, placeholder: 'fin-01' },
          { name: 'name', label: L('名称', 'Name'), required: true, value: d ? d.name : '' },
          { name: 'campus_id', label: L('院区', 'Campus'), type: 'select', value: d ? d.campus_id || '' : '',
            options: [['', L('不限', 'None')], ...(campuses.items || []).map((c) => [c.id, `${c.name} (${c.id})`])] },
          { name: 'parent_id', label: L('上级', 'Parent'), type: 'select', value: d ? d.parent_id || '' : '',
            options: [['', L('无', 'None')], ...(deps.items || []).filter((x) => !d || x.id !== d.id).map((x) => [x.id, `${x.name} (${x.id})`])] },
          { name: 'enabled', label: L('启用', 'Enabled'), type: 'checkbox', value: d ? d.enabled : true },
        ].filter(Boolean),
        onSubmit: (v) => put(`/system/departments/${encodeURIComponent(d ? d.id : v.id)}`,
          { name: v.name, campus_id: v.campus_id || null, parent_id: v.parent_id || null, enabled: v.enabled }) });
      if (out) { toast(L('已保存', 'Saved')); reload(); }
    };
    const removeDep = async (d) => {
      if (!(await confirm(L('删除科室/部门', 'Delete department'), L(`删除 ${d.name} (${d.id})？`, `Delete ${d.name} (${d.id})?`), { danger: true }))) return;
      try { await del(`/system/departments/${encodeURIComponent(d.id)}`); toast(L('已删除', 'Deleted')); reload(); } catch (e) { toast(e.message, 'bad', 6000); }
    };
    return h('div', { class: 'grid cols-2e panel-body' },
      panel(L('院区', 'Campuses'), [
        edit ? h('div', { class: 'filters' }, h('button', { class: 'primary', dataset: { testid: 'add-campus' }, onClick: () => campusDialog(null) }, L('新增院区', 'Add campus'))) : null,
        table({ testid: 'org-campuses', rows: campuses.items || [], columns: [
          { title: L('编码', 'Code'), render: (c) => h('span', { class: 'mono' }, c.id) },
          { title: L('名称', 'Name'), key: 'name' },
          { title: L('科室数', 'Departments'), num: true, render: (c) => int((deps.items || []).filter((d) => d.campus_id === c.id).length) },
          { title: L('操作', 'Actions'), cls: 'actions', render: (c) => (edit ? h('button', { class: 'link', onClick: () => campusDialog(c) }, L('修改', 'Edit')) : '—') },
        ] })], { flush: true }),
      panel(L('科室/部门', 'Departments'), [
        edit ? h('div', { class: 'filters' }, h('button', { class: 'primary', dataset: { testid: 'add-department' }, onClick: () => depDialog(null) }, L('新增科室/部门', 'Add department'))) : null,
        table({ testid: 'org-departments', rows: deps.items || [], empty: L('尚无科室/部门', 'No departments yet'), columns: [
          { title: L('编码', 'Code'), render: (d) => h('span', { class: 'mono' }, d.id) },
          { title: L('名称', 'Name'), key: 'name' },
          { title: L('院区', 'Campus'), render: (d) => (d.campus_id ? campusName(d.campus_id) : '—') },
          { title: L('上级', 'Parent'), render: (d) => (d.parent_id ? depName(d.parent_id) : '—') },
          { title: L('人员', 'Users'), num: true, render: (d) => int(d.users) },
          { title: L('状态', 'State'), render: (d) => yesNo(d.enabled, L('启用', 'enabled'), L('停用', 'disabled')) },
          { title: L('操作', 'Actions'), cls: 'actions', render: (d) => (edit ? h('span', null,
            h('button', { class: 'link', onClick: () => depDialog(d) }, L('修改', 'Edit')),
            h('button', { class: 'link danger', onClick: () => removeDep(d) }, L('删除', 'Delete'))) : '—') },
        ] })], { flush: true }));
  },

  async exports(ctx, params) {
    const t = today();
    const values = { user: params.user || '', begin: params.begin || addDays(t, -29), end: params.end || t };
    const limit = parseInt(params.limit || '50', 10);
    const offset = parseInt(params.offset || '0', 10);
    const go = (v, off = 0, lim = limit) => ctx.navigate('system', { tab: 'exports', ...v, offset: off || undefined, limit: lim });
    const res = await get('/system/oplog', { ...values, action: 'report.export', limit, offset });
    const q = (r) => (r.detail && r.detail.query) || {};
    return h('div', null,
      filterBar([
        { name: 'user', label: L('用户', 'User') },
        { name: 'begin', label: L('开始日期', 'From'), type: 'date' },
        { name: 'end', label: L('结束日期', 'To'), type: 'date' },
      ], values, (v) => go(v), { resetValues: { begin: addDays(t, -29), end: t } }),
      table({ testid: 'exports', rows: res.items || [], empty: L('该期间无导出', 'No exports in this period'), columns: [
        { title: L('时间', 'Time'), render: (r) => h('span', { class: 'nowrap' }, datetime(r.at)) },
        { title: L('用户', 'User'), key: 'user' },
        { title: 'IP', key: 'ip' },
        { title: L('导出内容', 'What'), render: (r) => h('span', { class: 'mono' }, r.target || '—') },
        { title: L('格式', 'Format'), render: (r) => tag(String(q(r).format || '').toUpperCase() || '—', 'info') },
        { title: L('期间', 'Period'), render: (r) => [q(r).begin, q(r).end].filter(Boolean).join(' ~ ') || '—' },
        { title: L('分组', 'Grouping'), render: (r) => q(r).group || '—' },
        { title: L('接口', 'Route'), render: (r) => h('span', { class: 'muted mono' }, (r.detail && r.detail.route) || '') },
      ] }),
      pager({ total: res.total || 0, limit, offset, onChange: (off, lim) => go(values, off, lim) }));
  },

  async dicts(ctx, params) {
    const res = await get('/system/dictionaries');
    const items = res.items || [];
    const pickedKey = items.some((d) => d.key === params.dict) ? params.dict : '';
    const shown = pickedKey ? items.filter((d) => d.key === pickedKey) : items;
    const chips = h('div', { class: 'chips' },
      h('span', { class: pickedKey ? 'chip' : 'chip on', onClick: () => ctx.navigate('system', { tab: 'dicts' }) }, L('全部', 'All'),
        h('span', { class: 'n' }, String(items.length))),
      items.map((d) => h('span', { class: d.key === pickedKey ? 'chip on' : 'chip', dataset: { dict: d.key },
        onClick: () => ctx.navigate('system', { tab: 'dicts', dict: d.key }) }, L(d.name_zh, d.name_en),
      h('span', { class: 'n' }, String(d.entries.length)))));
    return h('div', { dataset: { testid: 'dictionaries' } },
      h('div', { class: 'filters' }, chips),
      h('div', { class: 'dicts' }, shown.map((d) => panel(h('span', null, L(d.name_zh, d.name_en), ' ',
        h('span', { class: 'muted mono' }, d.key)), table({ rows: d.entries, columns: [
        { title: L('代码', 'Code'), render: (e) => h('span', { class: 'mono' }, e.code) },
        { title: '中文', key: 'label_zh' },
        { title: 'English', key: 'label_en' },
      ] }), { flush: true, testid: `dict-${d.key}` }))));
  },

  async jobs(ctx) {
    const t = today();
    // /system/jobs answers the workers, the reconciliation schedule, recent runs and fetches.
    const jobs = await get('/system/jobs');
    const [runs, fetches] = await Promise.all([
      jobs.recon_runs ? { items: jobs.recon_runs } : (ctx.can('recon.view') ? get('/admin/recon/runs', { limit: 50 }).catch(() => ({ items: [] })) : { items: [] }),
      jobs.fetches ? { items: jobs.fetches } : (ctx.can('recon.view') ? get('/admin/recon/fetches', { date: t, limit: 200 }).catch(() => ({ items: [] })) : { items: [] }),
    ]);
    const sched = jobs.recon_schedule;
    return h('div', null,
      h('h3', { class: 'panel-body' }, L('后台任务', 'Background jobs')),
      table({ testid: 'jobs', rows: jobs.workers || jobs.items || [], rowClass: (w) => (w.running === false ? 'row-bad' : undefined), columns: [
        { title: L('任务', 'Job'), render: (w) => h('span', null, L(w.name_zh || w.name, w.name), h('div', { class: 'muted mono' }, w.name)) },
        { title: L('间隔', 'Interval'), num: true, render: (w) => (w.interval_seconds !== undefined && w.interval_seconds !== null ? `${w.interval_seconds} s` : '—') },
        { title: L('运行状态', 'Running'), render: (w) => (w.running ? tag(L('运行中', 'running'), 'ok') : tag(L('未运行', 'stopped'), 'bad')) },
      ] }),
      sched ? h('div', { class: 'panel-body' }, kv([
        [L('自动对账', 'Scheduled reconciliation'), sched.enabled ? tag(L('已启用', 'on'), 'ok') : tag(L('已关闭', 'off'))],
        [L('T+0 间隔', 'T+0 every'), `${sched.t0_interval_seconds} s`],
        [L('T+1 时间', 'T+1 after'), sched.t1_after],
        [L('匹配窗口', 'Window'), `T±${sched.window_days}`],
      ])) : null,
      h('h3', { class: 'panel-body' }, L('对账运行记录', 'Reconciliation runs')),
      table({ testid: 'runs', rows: runs.items || [], rowClass: (r) => (r.status === 'FAILED' ? 'row-bad' : undefined), columns: [
        { title: L('运行号', 'Run'), render: (r) => h('span', { class: 'mono' }, r.id) },
        { title: L('日期', 'Day'), render: (r) => h('a', { href: r.mode === 'ins' ? `#/recon?tab=insurance&begin=${r.day}` : `#/recon?date=${r.day}` }, r.day) },
        { title: L('模式', 'Mode'), render: (r) => ({ t0: 'T+0', t1: 'T+1', ins: L('医保', 'insurance') }[r.mode] || r.mode) },
        { title: L('状态', 'Status'), render: (r) => tag(r.status, r.status === 'DONE' ? 'ok' : r.status === 'FAILED' ? 'bad' : 'warn') },
        { title: L('差异', 'Differences'), num: true, render: (r) => int((r.summary && (r.summary.new_differences ?? r.summary.differences)) || 0) },
        { title: L('完整', 'Complete'), render: (r) => (r.summary && r.summary.complete === false ? tag(label(DAY_STATE, 'incomplete'), 'warn') : '—') },
        { title: L('发起人', 'By'), key: 'actor' },
        { title: L('开始', 'Started'), render: (r) => datetime(r.started_at) },
        { title: L('结束', 'Finished'), render: (r) => datetime(r.finished_at) },
        { title: L('错误', 'Error'), key: 'error' },
      ] }),
      h('h3', { class: 'panel-body' }, L('账单获取日志', 'Fetch log')),
      table({ testid: 'fetches', rows: fetches.items || [], rowClass: (f) => (f.status === 'FAILED' ? 'row-bad' : undefined), columns: [
        { title: L('时间', 'Time'), render: (f) => datetime(f.at) },
        { title: L('日期', 'Day'), key: 'day' },
        { title: L('来源', 'Source'), render: (f) => `${f.source}:${f.source_id}` },
        { title: L('账单类型', 'Bill type'), key: 'bill_type' },
        { title: L('方式', 'Origin'), key: 'origin' },
        { title: L('结果', 'Outcome'), render: (f) => tag(f.status, f.status === 'OK' ? 'ok' : f.status === 'FAILED' ? 'bad' : '') },
        { title: L('尝试', 'Attempts'), num: true, key: 'attempts' },
        { title: L('笔数', 'Lines'), num: true, render: (f) => int(f.line_count) },
        { title: L('错误', 'Error'), key: 'error' },
      ] }));
  },

  async sessions(ctx, params, reload) {
    const res = await get('/system/sessions');
    return table({ testid: 'sessions', rows: res.items || [], columns: [
      { title: L('用户', 'User'), key: 'username' },
      { title: 'IP', key: 'ip' },
      { title: L('浏览器', 'Browser'), render: (s) => h('span', { class: 'muted', title: s.user_agent || '' }, (s.user_agent || '—').slice(0, 60)) },
      { title: L('登录时间', 'Since'), render: (s) => datetime(s.created_at) },
      { title: L('最近活动', 'Last seen'), render: (s) => datetime(s.last_seen_at) },
      { title: L('过期时间', 'Expires'), render: (s) => datetime(s.expires_at) },
      { title: L('操作', 'Actions'), cls: 'actions', render: (s) => (s.current ? tag(L('当前会话', 'this session'), 'info')
        : h('button', { class: 'link danger', onClick: async () => {
          if (!(await confirm(L('结束会话', 'End session'), L(`强制 ${s.username} 的此会话下线？`, `Log ${s.username} out of this session?`), { danger: true }))) return;
          try { await del(`/system/sessions/${encodeURIComponent(s.id)}`); toast(L('已结束会话', 'Session ended')); reload(); } catch (e) { toast(e.message, 'bad'); }
        } }, L('强制下线', 'End'))) },
    ] });
  },
};

