// Shared widgets: tables, pagination, tags, tabs, drawers, dialogs, toasts, filter bars.
import { h, clear, mount, formValues } from './dom.js';
import { L } from './i18n.js';
import { label, kindOf } from './fmt.js';

// --- tags ------------------------------------------------------------------------------------------
export function tag(text, kind = '') { return h('span', { class: `tag ${kind}`.trim() }, text); }

// A status tag from one of the code tables of fmt.js (label + colour).
export function statusTag(table, code) {
  return h('span', { class: `tag ${kindOf(table, code)}`.trim(), dataset: { status: code || '' } }, label(table, code));
}

// --- tables ----------------------------------------------------------------------------------------
// columns: [{key, title, render(row) → Node|string, num: bool, cls}]; rowClass(row) → class.
export function table({ columns, rows, empty, rowClass, onRowClick, testid }) {
  const head = h('tr', null, columns.map((c) => h('th', { class: c.num ? 'num' : c.cls }, c.title)));
  const body = h('tbody');
  if (!rows || rows.length === 0) {
    body.appendChild(h('tr', null, h('td', { class: 'empty', colspan: columns.length }, empty || L('暂无数据', 'No data'))));
  } else {
    rows.forEach((row) => {
      const tr = h('tr', { class: rowClass ? rowClass(row) : undefined });
      columns.forEach((c) => {
        const v = c.render ? c.render(row) : row[c.key];
        tr.appendChild(h('td', { class: [c.num ? 'num' : '', c.cls || ''].join(' ').trim() || undefined },
          v === undefined || v === null || v === '' ? '—' : v));
      });
      if (onRowClick) tr.addEventListener('dblclick', () => onRowClick(row));
      body.appendChild(tr);
    });
  }
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'data', dataset: { testid: testid || undefined } }, h('thead', null, head), body));
}

export function kv(pairs) {
  return h('table', { class: 'kv' }, h('tbody', null, pairs.filter(Boolean).map(([k, v]) =>
    h('tr', null, h('th', null, k), h('td', null, v === undefined || v === null || v === '' ? '—' : v)))));
}

// --- pagination ------------------------------------------------------------------------------------
export function pager({ total, limit, offset, onChange }) {
  const pages = Math.max(1, Math.ceil(total / limit));
  const page = Math.floor(offset / limit) + 1;
  const size = h('select', { onChange: (e) => onChange(0, parseInt(e.target.value, 10)) },
    [20, 50, 100, 200].map((n) => h('option', { value: n, selected: n === limit }, L(`${n} 条/页`, `${n} / page`))));
  return h('div', { class: 'pager' },
    h('span', { class: 'info' }, L(`共 ${total} 条`, `${total} in total`)),
    size,
    h('button', { class: 'small', disabled: page <= 1, onClick: () => onChange((page - 2) * limit, limit) }, L('上一页', 'Prev')),
    h('span', null, `${page} / ${pages}`),
    h('button', { class: 'small', disabled: page >= pages, onClick: () => onChange(page * limit, limit) }, L('下一页', 'Next')));
}

// --- tabs ------------------------------------------------------------------------------------------
// items: [{key, title, count}]; returns the strip; onSelect(key).
export function tabs(items, active, onSelect) {
  return h('div', { class: 'tabs' }, items.map((it) => h('a', {
    class: it.key === active ? 'on' : undefined, dataset: { tab: it.key },
    onClick: (e) => { e.preventDefault(); onSelect(it.key); },
  }, it.title, it.count !== undefined && it.count !== null ? h('span', { class: 'count' }, `(${it.count})`) : null)));
}

// --- panels ----------------------------------------------------------------------------------------
export function panel(title, body, { actions, flush, testid } = {}) {
  return h('div', { class: 'panel', dataset: { testid } },
    title || actions ? h('div', { class: 'panel-head' }, h('h3', null, title || ''), actions || null) : null,
    h('div', { class: flush ? 'panel-body flush' : 'panel-body' }, body));
}

export function loadingBox() { return h('div', { class: 'boot' }, L('加载中…', 'Loading…')); }

export function errorBox(err, retry) {
  return h('div', { class: 'alert bad' }, h('span', { class: 'grow' }, (err && err.message) || String(err)),
    retry ? h('button', { class: 'small', onClick: retry }, L('重试', 'Retry')) : null);
}

// --- overlays --------------------------------------------------------------------------------------
let openDrawer = null;

export function closeDrawer() {
  if (openDrawer) { openDrawer.remove(); openDrawer = null; }
}

// A right-hand drawer; content is a Node or an async function (body) → Node.
export function drawer(title, content, { footer, testid } = {}) {
  closeDrawer();
  const body = h('div', { class: 'drawer-body' });
  const foot = h('div', { class: 'drawer-foot' });
  const root = h('div', { dataset: { testid: testid || 'drawer' } },
    h('div', { class: 'mask', onClick: closeDrawer }),
    h('div', { class: 'drawer', role: 'dialog' },
      h('div', { class: 'drawer-head' }, h('h2', null, title),
        h('button', { class: 'close', title: L('关闭', 'Close'), onClick: closeDrawer }, '×')),
      body, foot));
  document.body.appendChild(root);
  openDrawer = root;
  const fill = (node, actions) => {
    mount(body, node);
    clear(foot);
    if (actions && actions.length) actions.forEach((a) => a && foot.appendChild(a));
    else foot.classList.add('hidden');
    if (actions && actions.length) foot.classList.remove('hidden');
  };
  fill(typeof content === 'function' ? loadingBox() : content, footer);
  return { root, body, fill, close: closeDrawer };
}

document.addEventListener('keydown', (e) => { if (e.key === 'Escape') closeDrawer(); });

// A form dialog. fields: [{name, label, type: text|textarea|select|number|password|money, required,
// minLength, options: [[value, label]], value, hint}]. onSubmit(values) may throw to show an error;
// resolves with its result, or null when cancelled.
export function dialog({ title, fields = [], message, okText, danger, onSubmit, testid }) {
  return new Promise((resolve) => {
    const err = h('div', { class: 'error' });
    const controls = fields.map((f) => {
      let input;
      if (f.type === 'textarea') {
        input = h('textarea', { name: f.name, maxlength: f.maxLength || 250 }, f.value || '');
      } else if (f.type === 'select') {
        input = h('select', { name: f.name }, (f.options || []).map(([v, t]) => h('option', { value: v, selected: v === f.value }, t)));
      } else if (f.type === 'checkbox') {
        return h('label', { class: 'row' }, h('input', { name: f.name, type: 'checkbox', checked: !!f.value }), f.label);
      } else {
        input = h('input', { name: f.name, type: f.type === 'money' ? 'text' : (f.type || 'text'), value: f.value ?? '',
          inputmode: f.type === 'money' ? 'decimal' : undefined, autocomplete: 'off', placeholder: f.placeholder });
      }
      return h('label', { class: f.required ? 'field req' : 'field' }, h('span', null, f.label), input,
        f.hint ? h('small', { class: 'muted' }, f.hint) : null);
    });
    const ok = h('button', { class: danger ? 'danger solid' : 'primary', type: 'submit', dataset: { testid: 'dialog-ok' } },
      okText || L('确定', 'OK'));
    const form = h('form', { class: 'modal', dataset: { testid: testid || 'dialog' } },
      h('div', { class: 'modal-head' }, h('h2', null, title)),
      h('div', { class: 'modal-body' }, message ? h('div', null, message) : null, controls, err),
      h('div', { class: 'modal-foot' }, h('button', { type: 'button', onClick: () => done(null) }, L('取消', 'Cancel')), ok));
    const mask = h('div', { class: 'mask' });
    const wrap = h('div', null, mask, form);
    function done(v) { wrap.remove(); resolve(v); }
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const values = formValues(form);
      for (const f of fields) {
        const v = values[f.name];
        if (f.required && !v) { err.textContent = L(`请填写「${f.label}」`, `${f.label} is required`); return; }
        if (f.minLength && v && v.length < f.minLength) {
          err.textContent = L(`「${f.label}」至少 ${f.minLength} 个字`, `${f.label}: at least ${f.minLength} characters`); return;
        }
      }
      ok.disabled = true;
      err.textContent = '';
      try {
        const out = onSubmit ? await onSubmit(values) : values;
        done(out === undefined ? values : out);
      } catch (ex) {
        err.textContent = ex.message || String(ex);
        ok.disabled = false;
      }
    });
    document.body.appendChild(wrap);
    const first = form.querySelector('input, textarea, select');
    if (first) first.focus();
  });
}

export function confirm(title, message, opts = {}) {
  return dialog({ title, message, okText: opts.okText, danger: opts.danger, onSubmit: async () => true })
    .then((v) => v === true);
}

// --- toasts ----------------------------------------------------------------------------------------
let toastBox = null;
export function toast(text, kind = 'ok', ms = 3500) {
  if (!toastBox || !toastBox.isConnected) { toastBox = h('div', { class: 'toasts' }); document.body.appendChild(toastBox); }
  const t = h('div', { class: `toast ${kind}`, role: 'status' }, text);
  toastBox.appendChild(t);
  setTimeout(() => t.remove(), ms);
}

// Run an action from a button: disable it meanwhile, toast the error.
export async function act(button, fn, okText) {
  if (button) button.disabled = true;
  try {
    const out = await fn();
    if (okText) toast(okText, 'ok');
    return out;
  } catch (e) {
    toast(e.message || String(e), 'bad', 6000);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

// --- filter bars -----------------------------------------------------------------------------------
// fields: [{name, label, type: text|date|select, options, placeholder, width}]; onSearch(values).
export function filterBar(fields, values, onSearch, { extra, resetValues } = {}) {
  const form = h('form', { class: 'filters', dataset: { testid: 'filters' } });
  fields.forEach((f) => {
    let input;
    if (f.type === 'select') {
      input = h('select', { name: f.name }, h('option', { value: '' }, L('全部', 'All')),
        (f.options || []).map(([v, t]) => h('option', { value: v, selected: String(values[f.name] ?? '') === String(v) }, t)));
    } else {
      input = h('input', { name: f.name, type: f.type || 'text', value: values[f.name] ?? '', placeholder: f.placeholder || '' });
    }
    form.appendChild(h('label', null, f.label, input));
  });
  form.appendChild(h('div', { class: 'actions' },
    h('button', { class: 'primary', type: 'submit' }, L('查询', 'Search')),
    h('button', { type: 'button', onClick: () => onSearch(resetValues ? { ...resetValues } : {}) }, L('重置', 'Reset')),
    extra || null));
  form.addEventListener('submit', (e) => { e.preventDefault(); onSearch(formValues(form)); });
  return form;
}

export function money(fenText, { neg } = {}) {
  return h('span', { class: neg ? 'num neg' : 'num' }, fenText);
}
