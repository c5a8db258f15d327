// 配置: campuses, merchants and entries (edited; credentials write-only), channels and methods on/off, caller apps,
// plugins, interface status.
import { h, mount } from '../dom.js';
import { get, patch, post, put } from '../api.js';
import { L } from '../i18n.js';
import { int, datetime, channelName, methodName, METHODS } from '../fmt.js';
import { table, tabs, tag, act, dialog, toast } from '../ui.js';

const TABS = [
  ['interfaces', '接口状态', 'Interfaces'], ['channels', '渠道与支付方式', 'Channels & methods'], ['campuses', '院区', 'Campuses'],
  ['merchants', '商户', 'Merchants'], ['entries', '收费入口', 'Entries'], ['apps', '调用方应用', 'Caller apps'], ['plugins', '插件', 'Plugins'],
];

const onOff = (b) => (b ? tag(L('启用', 'on'), 'ok') : tag(L('停用', 'off'), ''));

export async function render(box, params, ctx) {
  const tab = TABS.some((x) => x[0] === params.tab) ? params.tab : 'interfaces';
  const body = h('div');
  box.appendChild(h('div', { class: 'panel' }, tabs(TABS.map(([k, zh, en]) => ({ key: k, title: L(zh, en) })), tab,
    (k) => ctx.navigate('config', { tab: k })), body));
  const edit = ctx.can('config.edit');
  const load = async () => mount(body, await VIEWS[tab](edit, load));
  await load();
}

const VIEWS = {
  async interfaces() {
    const res = await get('/admin/interfaces');
    return table({ testid: 'interfaces', rows: res.interfaces || res.items || [],
      rowClass: (r) => (r.abnormal ? 'row-bad' : (r.rejected ? 'row-warn' : undefined)), columns: [
        { title: L('方向', 'Direction'), render: (r) => (r.direction === 'inbound' ? L('接入', 'inbound') : L('调出', 'outbound')) },
        { title: L('接口', 'Interface'), render: (r) => h('span', { class: 'mono' }, r.interface) },
        { title: L('总数', 'Total'), num: true, render: (r) => int(r.total) },
        { title: L('正常', 'Normal'), num: true, render: (r) => h('span', { class: 'tag ok' }, int(r.normal)) },
        { title: L('异常', 'Abnormal'), num: true, render: (r) => h('span', { class: r.abnormal ? 'tag bad' : 'tag' }, int(r.abnormal)) },
        { title: L('拒绝', 'Rejected'), num: true, render: (r) => h('span', { class: r.rejected ? 'tag warn' : 'tag' }, int(r.rejected)) },
        { title: L('平均耗时', 'Avg latency'), num: true, render: (r) => `${r.avg_latency_ms} ms` },
        { title: L('最近调用', 'Last call'), render: (r) => datetime(r.last_call_at) },
      ] });
  },

  async channels(edit, reload) {
    const res = await get('/admin/channels');
    const methods = Object.keys(METHODS);
    return table({ testid: 'channels', rows: res.items || [], columns: [
      { title: L('渠道', 'Channel'), render: (c) => h('span', null, L(c.name_zh || channelName(c.id), c.name_en || c.id), h('span', { class: 'muted' }, ` (${c.id})`)) },
      { title: L('状态', 'State'), render: (c) => onOff(c.enabled) },
      ...methods.map((m) => ({ title: methodName(m), render: (c) => {
        const supported = !c.capabilities || c.capabilities.some((cap) => cap === m || cap.startsWith(m));
        if (!supported) return h('span', { class: 'muted' }, L('不支持', 'n/a'));
        const on = !(c.disabled_methods || []).includes(m);
        return h('input', { type: 'checkbox', checked: on, disabled: !edit || !c.enabled, title: L('启用/停用此支付方式', 'Switch this method'),
          onChange: (e) => act(e.target, async () => {
            const dis = new Set(c.disabled_methods || []);
            if (e.target.checked) dis.delete(m); else dis.add(m);
            await patch(`/admin/channels/${encodeURIComponent(c.id)}`, { disabled_methods: [...dis] });
            reload();
          }, L('已保存', 'Saved')) });
      } })),
      { title: L('插件', 'Plugin'), key: 'plugin' },
      { title: L('操作', 'Actions'), cls: 'actions', render: (c) => (edit ? h('button', { class: c.enabled ? 'small danger' : 'small ok', onClick: (e) => act(e.currentTarget, async () => {
        await patch(`/admin/channels/${encodeURIComponent(c.id)}`, { enabled: !c.enabled });
        reload();
      }, c.enabled ? L('已停用', 'Switched off') : L('已启用', 'Switched on')) }, c.enabled ? L('停用', 'Switch off') : L('启用', 'Switch on')) : '—') },
    ] });
  },

  async campuses(edit, reload) {
    const res = await get('/admin/campuses');
    const editCampus = async (c) => {
      const out = await dialog({ title: c ? L('修改院区', 'Edit campus') : L('新增院区', 'Add campus'), fields: [
        c ? null : { name: 'id', label: L('院区编码', 'Code'), required: true },
        { name: 'name', label: L('名称', 'Name'), required: true, value: c ? c.name : '' },
      ].filter(Boolean), onSubmit: (v) => put(`/admin/campuses/${encodeURIComponent(c ? c.id : v.id)}`, { name: v.name }) });
      if (out) { toast(L('已保存', 'Saved')); reload(); }
    };
    return h('div', null, edit ? h('div', { class: 'filters' }, h('button', { class: 'primary', onClick: () => editCampus(null) }, L('新增院区', 'Add campus'))) : null,
      table({ testid: 'campuses', rows: res.items || [], columns: [
        { title: L('编码', 'Code'), key: 'id' },
        { title: L('名称', 'Name'), key: 'name' },
        { title: L('操作', 'Actions'), cls: 'actions', render: (c) => (edit ? h('button', { class: 'link', onClick: () => editCampus(c) }, L('修改', 'Edit')) : '—') },
      ] }));
  },

  async merchants(edit, reload) {
    const [res, campuses] = await Promise.all([get('/admin/merchants'), get('/admin/campuses')]);
    const merchantDialog = async (m) => {
      const out = await dialog({ title: L(`修改商户 ${m.id}`, `Edit merchant ${m.id}`), testid: 'merchant-dialog', fields: [
        { name: 'name', label: L('名称', 'Name'), required: true, value: m.name },
        { name: 'priority', label: L('优先级（小者优先）', 'Priority (lower first)'), type: 'number', required: true, value: String(m.priority) },
        { name: 'campus_id', label: L('院区', 'Campus'), type: 'select', value: m.campus_id || '',
          options: [['', L('全部院区', 'Any campus')], ...(campuses.items || []).map((c) => [c.id, `${c.name} (${c.id})`])] },
        { name: 'business_types', label: L('业务类型（逗号分隔，留空为全部）', 'Business types (comma-separated, blank: any)'),
          value: (m.business_types || []).join(', ') },
        { name: 'enabled', label: L('启用', 'Enabled'), type: 'checkbox', value: m.enabled },
        { name: 'config', label: L('商户配置（JSON，整体替换；留空不修改）', 'Configuration (JSON, replaces it all; blank: unchanged)'),
          type: 'textarea', maxLength: 20000,
          hint: L(`密钥只写不读：已保存的密钥不会显示。当前非密字段：${Object.keys(m.config || {}).join(', ') || '无'}`,
            `Credentials are write-only: stored ones are never shown. Public fields now: ${Object.keys(m.config || {}).join(', ') || 'none'}`) },
      ], onSubmit: (v) => {
        const priority = parseInt(v.priority, 10);
        if (!Number.isInteger(priority) || priority < 0 || priority > 10000) throw new Error(L('优先级为 0–10000 的整数', 'Priority is a whole number 0–10000'));
        const body = { name: v.name, priority, enabled: v.enabled, campus_id: v.campus_id || null,
          business_types: v.business_types.split(/[,，\s]+/).filter(Boolean) };
        if (v.config) {
          try { body.config = JSON.parse(v.config); } catch { throw new Error(L('商户配置不是有效的 JSON', 'The configuration is not valid JSON')); }
          if (!body.config || typeof body.config !== 'object' || Array.isArray(body.config)) throw new Error(L('商户配置须为 JSON 对象', 'The configuration must be a JSON object'));
        }
        return patch(`/admin/merchants/${encodeURIComponent(m.id)}`, body);
      } });
      if (out) { toast(L('已保存', 'Saved')); reload(); }
    };
    return table({ testid: 'merchants', rows: res.items || [], columns: [
      { title: L('商户', 'Merchant'), render: (m) => h('span', null, m.name, h('div', { class: 'muted mono' }, m.id)) },
      { title: L('渠道', 'Channel'), render: (m) => channelName(m.channel) },
      { title: L('院区', 'Campus'), render: (m) => m.campus_id || L('全部', 'any') },
      { title: L('业务类型', 'Business types'), render: (m) => ((m.business_types || []).length ? m.business_types.join(', ') : L('全部', 'any')) },
      { title: L('优先级', 'Priority'), num: true, key: 'priority' },
      { title: L('配置(非密)', 'Config (public)'), render: (m) => h('span', { class: 'mono' }, Object.entries(m.config || {}).map(([k, v]) => `${k}=${v}`).join(' ')) },
      { title: L('状态', 'State'), render: (m) => onOff(m.enabled) },
      { title: L('操作', 'Actions'), cls: 'actions', render: (m) => (edit ? h('span', null,
        h('button', { class: 'link', dataset: { testid: 'edit-merchant' }, onClick: () => merchantDialog(m) }, L('修改', 'Edit')),
        h('button', { class: 'link', onClick: (e) => act(e.currentTarget, async () => {
          await patch(`/admin/merchants/${encodeURIComponent(m.id)}`, { enabled: !m.enabled });
          reload();
        }, L('已保存', 'Saved')) }, m.enabled ? L('停用', 'Switch off') : L('启用', 'Switch on'))) : '—') },
    ] });
  },

  async entries(edit, reload) {
    const [res, campuses, channels, merchants, apps] = await Promise.all([get('/admin/entries'), get('/admin/campuses'),
      get('/admin/channels'), get('/admin/merchants'), get('/admin/apps').catch(() => ({ items: [] }))]);
    const chans = (channels.items || []).map((c) => c.id);
    const methods = Object.keys(METHODS);
    const entryDialog = async (e) => {
      const fields = [
        e ? null : { name: 'code', label: L('入口编码（调用方传 entry）', 'Code (what callers send as entry)'), required: true, placeholder: 'kiosk-01' },
        { name: 'name', label: L('名称', 'Name'), required: true, value: e ? e.name : '' },
        e ? null : { name: 'app_id', label: L('调用方应用', 'Caller app'), type: 'select', value: '',
          options: (apps.items || []).map((a) => [a.app_id, `${a.name} (${a.app_id})`]) },
        e ? null : { name: 'business_type', label: L('业务类型', 'Business type'), required: true, placeholder: 'outpatient' },
        { name: 'campus_id', label: L('院区', 'Campus'), type: 'select', value: e ? e.campus_id || '' : '',
          options: [['', L('不限', 'Any')], ...(campuses.items || []).map((c) => [c.id, `${c.name} (${c.id})`])] },
        ...chans.map((c) => ({ name: `ch:${c}`, label: `${L('渠道', 'Channel')}: ${channelName(c)}`, type: 'checkbox',
          value: e ? (e.channels || []).includes(c) : false })),
        ...methods.map((m) => ({ name: `m:${m}`, label: `${L('方式', 'Method')}: ${methodName(m)}`, type: 'checkbox',
          value: e ? (e.methods || []).includes(m) : false })),
        { name: 'merchants', label: L('指定商户（渠道=商户号，逗号分隔）', 'Merchants (channel=merchant id, comma-separated)'),
          value: e ? Object.entries(e.merchants || {}).map(([k, v]) => `${k}=${v}`).join(', ') : '',
          hint: L(`不勾选渠道/方式即为全部。可选商户：${(merchants.items || []).map((m) => `${m.channel}=${m.id}`).join(', ')}`,
            `No channel or method ticked: any. Merchants: ${(merchants.items || []).map((m) => `${m.channel}=${m.id}`).join(', ')}`) },
        { name: 'enabled', label: L('启用', 'Enabled'), type: 'checkbox', value: e ? e.enabled : true },
      ].filter(Boolean);
      const out = await dialog({ title: e ? L(`修改收费入口 ${e.code}`, `Edit entry ${e.code}`) : L('新增收费入口', 'Add entry'),
        testid: 'entry-dialog', fields, onSubmit: (v) => {
          const pairs = v.merchants.split(/[,，\s]+/).filter(Boolean).map((x) => x.split('='));
          if (pairs.some((p) => p.length !== 2 || !p[0] || !p[1])) throw new Error(L('商户格式：渠道=商户号', 'Merchants: channel=merchant id'));
          const body = { name: v.name, campus_id: v.campus_id || null, channels: chans.filter((c) => v[`ch:${c}`]),
            methods: methods.filter((m) => v[`m:${m}`]), merchants: Object.fromEntries(pairs), enabled: v.enabled };
          if (e) return patch(`/admin/entries/${encodeURIComponent(e.id)}`, body);
          if (!v.app_id) throw new Error(L('请选择调用方应用', 'Choose the caller app'));
          return post('/admin/entries', { ...body, code: v.code, app_id: v.app_id, business_type: v.business_type });
        } });
      if (out) { toast(L('已保存', 'Saved')); reload(); }
    };
    return h('div', null, edit ? h('div', { class: 'filters' }, h('button', { class: 'primary', dataset: { testid: 'add-entry' }, onClick: () => entryDialog(null) }, L('新增收费入口', 'Add entry'))) : null,
      table({ testid: 'entries', rows: res.items || [], columns: [
        { title: L('入口编码', 'Code'), render: (e) => h('span', { class: 'mono' }, e.code) },
        { title: L('名称', 'Name'), key: 'name' },
        { title: L('调用方', 'App'), key: 'app_id' },
        { title: L('院区', 'Campus'), key: 'campus_id' },
        { title: L('业务类型', 'Business type'), key: 'business_type' },
        { title: L('渠道', 'Channels'), render: (e) => ((e.channels || []).length ? e.channels.map(channelName).join(', ') : L('全部', 'any')) },
        { title: L('方式', 'Methods'), render: (e) => ((e.methods || []).length ? e.methods.map(methodName).join(', ') : L('全部', 'any')) },
        { title: L('指定商户', 'Merchants'), render: (e) => h('span', { class: 'mono' }, Object.entries(e.merchants || {}).map(([k, v]) => `${k}=${v}`).join(' ')) },
        { title: L('状态', 'State'), render: (e) => onOff(e.enabled) },
        { title: L('操作', 'Actions'), cls: 'actions', render: (e) => (edit ? h('span', null,
          h('button', { class: 'link', dataset: { testid: 'edit-entry' }, onClick: () => entryDialog(e) }, L('修改', 'Edit')),
          h('button', { class: 'link', onClick: (ev) => act(ev.currentTarget, async () => {
            await patch(`/admin/entries/${encodeURIComponent(e.id)}`, { enabled: !e.enabled });
            reload();
          }, L('已保存', 'Saved')) }, e.enabled ? L('停用', 'Switch off') : L('启用', 'Switch on'))) : '—') },
      ] }));
  },

  async apps() {
    const res = await get('/admin/apps');
    return table({ testid: 'apps', rows: res.items || [], columns: [
      { title: 'app_id', render: (a) => h('span', { class: 'mono' }, a.app_id) },
      { title: L('名称', 'Name'), key: 'name' },
      { title: L('权限范围', 'Scopes'), render: (a) => (a.scopes || []).map((s) => tag(s, s === 'admin' ? 'warn' : 'info')) },
      { title: L('业务类型', 'Business types'), render: (a) => ((a.business_types || []).length ? a.business_types.join(', ') : L('全部', 'any')) },
      { title: L('状态', 'State'), render: (a) => onOff(a.enabled) },
      { title: L('创建时间', 'Created'), render: (a) => datetime(a.created_at) },
    ] });
  },

  async plugins() {
    const res = await get('/admin/plugins');
    return h('div', null,
      table({ testid: 'plugins', rows: res.plugins || [], columns: [
        { title: L('插件', 'Plugin'), key: 'name' },
        { title: L('模块', 'Module'), render: (p) => h('span', { class: 'mono' }, p.module) },
        { title: L('来源', 'Source'), key: 'source' },
        { title: L('版本', 'Version'), key: 'version' },
        { title: L('实现的钩子', 'Hooks'), render: (p) => (p.hooks || []).join(', ') },
      ] }),
      table({ rows: res.channels || [], columns: [
        { title: L('渠道', 'Channel'), render: (c) => L(c.name_zh || c.id, c.name_en || c.id) },
        { title: L('能力', 'Capabilities'), render: (c) => (c.capabilities || []).map((x) => tag(x)) },
        { title: L('插件', 'Plugin'), key: 'plugin' },
        { title: L('状态', 'State'), render: (c) => onOff(c.enabled) },
      ] }));
  },
};
