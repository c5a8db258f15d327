// The console shell: session bootstrap, left menu, top bar, hash router, page loading.
import { h, mount, clear, icon } from './dom.js';
import { get, post, setCsrf, onSessionExpired } from './api.js';
import { L, lang, setLang, onLang } from './i18n.js';
import { dialog, toast, closeDrawer, errorBox } from './ui.js';

// Menu: route, labels, icon, the permission that shows it (any of a list).
const MENU = [
  { route: 'overview', zh: '数据总览', en: 'Overview', icon: 'overview', perm: ['overview.view'] },
  { route: 'transactions', zh: '交易管理', en: 'Transactions', icon: 'transactions', perm: ['payments.view'] },
  { route: 'cases', zh: '单边账', en: 'Single-sided', icon: 'cases', perm: ['cases.view'], badge: 'open_cases' },
  { route: 'approvals', zh: '审核', en: 'Approvals', icon: 'approvals', perm: ['approvals.view'], badge: 'pending_approvals_for_me' },
  { route: 'recon', zh: '对账', en: 'Reconciliation', icon: 'recon', perm: ['recon.view'] },
  { route: 'reports', zh: '报表', en: 'Reports', icon: 'reports', perm: ['reports.view'] },
  { route: 'config', zh: '配置', en: 'Configuration', icon: 'config', perm: ['config.view'] },
  { route: 'system', zh: '系统管理', en: 'System', icon: 'system', perm: ['system.users', 'system.roles', 'oplog.view'] },
];
const PAGES = {
  overview: () => import('./pages/overview.js'),
  transactions: () => import('./pages/transactions.js'),
  cases: () => import('./pages/cases.js'),
  approvals: () => import('./pages/approvals.js'),
  recon: () => import('./pages/recon.js'),
  reports: () => import('./pages/reports.js'),
  config: () => import('./pages/config.js'),
  system: () => import('./pages/system.js'),
};

const root = document.getElementById('app');
const state = { user: null, badges: {} };
let renderSeq = 0;
let content;
let titleEl;
let menuEl;
let closeMenus = () => {};
document.addEventListener('click', () => closeMenus());

// --- permissions -------------------------------------------------------------------------------
export function can(perm) {
  const perms = (state.user && state.user.permissions) || [];
  if (perms.includes('*')) return true;
  return (Array.isArray(perm) ? perm : [perm]).some((p) => perms.includes(p));
}
export function currentUser() { return state.user; }

// --- routing: #/page?key=value ------------------------------------------------------------------
export function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  const params = Object.fromEntries(new URLSearchParams(query || ''));
  return { page: path || '', params };
}

export function navigate(page, params = {}, { replace } = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '')).toString();
  const target = `#/${page}${q ? `?${q}` : ''}`;
  if (location.hash === target) { route(); return; }
  if (replace) { history.replaceState(null, '', target); route(); } else location.hash = target;
}

// Update the query of the current page without re-rendering it (filters, tabs, pagination).
export function setParams(params) {
  const { page } = parseHash();
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '')).toString();
  history.replaceState(null, '', `#/${page}${q ? `?${q}` : ''}`);
}

function firstAllowed() {
  const m = MENU.find((x) => can(x.perm));
  return m ? m.route : null;
}

// --- bootstrap -------------------------------------------------------------------------------
async function boot() {
  onSessionExpired(() => {
    if (!state.user) return;
    state.user = null;
    setCsrf(null);
    closeDrawer();
    toast(L('会话已过期，请重新登录', 'Session expired: please log in again'), 'bad');
    showLogin();
  });
  onLang(() => { if (state.user) { renderShell(); route(); } else showLogin(); });
  window.addEventListener('hashchange', () => { if (state.user) route(); });
  try {
    const me = await get('/me', null, { noExpire: true });
    signedIn(me);
  } catch (e) {
    if (e.status === 401) showLogin();
    else mount(root, errorBox(e, () => location.reload()));
  }
}

export function signedIn(me) {
  state.user = me.user || me;
  if (me.csrf_token) setCsrf(me.csrf_token);
  renderShell();
  if (!parseHash().page || parseHash().page === 'login') navigate(firstAllowed() || 'overview', {}, { replace: true });
  else route();
  refreshBadges();
  if (state.user.must_change_password || state.user.password_change_required) changePassword(true);
}

async function showLogin() {
  document.title = L('登录 · 银医财务管理后台', 'Log in · yinyi finance console');
  const mod = await import('./pages/login.js');
  mod.render(root, { onDone: signedIn });
}

// --- shell -----------------------------------------------------------------------------------
function renderShell() {
  const u = state.user;
  menuEl = h('ul', { class: 'menu', dataset: { testid: 'menu' } });
  titleEl = h('div', { class: 'title' });
  content = h('main', { class: 'content', id: 'content' });
  const langBtn = h('button', { class: 'small', dataset: { testid: 'lang' }, title: 'Language / 语言',
    onClick: () => setLang(lang() === 'zh' ? 'en' : 'zh') }, icon('globe', 'icon-s'), lang() === 'zh' ? 'English' : '中文');
  const dd = h('div', { class: 'dropdown hidden' },
    h('div', { class: 'info' }, `${u.username} · ${(u.roles || []).join(', ') || '—'}`),
    h('a', { onClick: () => { dd.classList.add('hidden'); changePassword(false); } }, L('修改密码', 'Change password')),
    h('a', { dataset: { testid: 'logout' }, onClick: logout }, L('退出登录', 'Log out')));
  const userBox = h('div', { class: 'user' },
    h('button', { dataset: { testid: 'user' }, onClick: (e) => { e.stopPropagation(); dd.classList.toggle('hidden'); } },
      h('span', { class: 'avatar' }, (u.display_name || u.username || '?').slice(0, 1)),
      h('span', null, u.display_name || u.username)),
    dd);
  closeMenus = () => dd.classList.add('hidden');
  mount(root, h('div', { class: 'layout' },
    h('aside', { class: 'side' },
      h('div', { class: 'brand' }, h('img', { src: '/console/static/img/logo.svg', alt: '' }), L('银医 · 财务管理', 'yinyi Finance')),
      menuEl,
      h('div', { class: 'side-foot' }, L('统一支付与对账平台', 'Unified payments & reconciliation'))),
    h('div', { class: 'main' },
      h('header', { class: 'top' }, titleEl, h('div', { class: 'spacer' }), langBtn, userBox),
      content)));
  renderMenu();
}

function renderMenu() {
  if (!menuEl) return;
  const { page } = parseHash();
  clear(menuEl);
  MENU.filter((m) => can(m.perm)).forEach((m) => {
    const n = m.badge ? state.badges[m.badge] : 0;
    menuEl.appendChild(h('li', null, h('a', { href: `#/${m.route}`, class: page === m.route ? 'active' : undefined,
      dataset: { route: m.route } }, icon(m.icon), L(m.zh, m.en), n ? h('span', { class: 'count' }, String(n)) : null)));
  });
}

// Counters in the menu (open cases, approvals waiting for me), from the overview route.
export async function refreshBadges() {
  if (!can('overview.view')) return;
  try {
    const o = await get('/overview');
    state.badges = { open_cases: o.open_cases || 0, pending_approvals_for_me: o.pending_approvals_for_me || 0 };
    renderMenu();
  } catch { /* the badges are a convenience */ }
}

async function route() {
  const seq = ++renderSeq;
  let { page, params } = parseHash();
  closeDrawer();
  const item = MENU.find((m) => m.route === page);
  if (!item || !PAGES[page]) {
    navigate(firstAllowed() || 'overview', {}, { replace: true });
    return;
  }
  renderMenu();
  titleEl.textContent = L(item.zh, item.en);
  document.title = `${L(item.zh, item.en)} · ${L('银医财务管理后台', 'yinyi finance console')}`;
  content.dataset.page = page;
  content.dataset.ready = '';
  if (!can(item.perm)) {
    mount(content, h('div', { class: 'alert warn' }, L('您没有访问此页面的权限', 'You do not have access to this page')));
    content.dataset.ready = '1';
    return;
  }
  const started = performance.now();
  const box = h('div', { class: 'stack' });
  mount(content, box);
  try {
    const mod = await PAGES[page]();
    if (seq !== renderSeq) return;
    await mod.render(box, params, { can, navigate, setParams, user: state.user, refreshBadges,
      isCurrent: () => seq === renderSeq });
  } catch (e) {
    if (seq !== renderSeq) return;
    if (e && e.status === 401) return;
    box.appendChild(errorBox(e, () => route()));
  }
  if (seq !== renderSeq) return;
  // Marks for tests and for measuring: the page's data is on screen.
  content.dataset.ready = '1';
  content.dataset.loadMs = String(Math.round(performance.now() - started));
}

async function logout() {
  try { await post('/logout'); } catch { /* the session may be gone already */ }
  state.user = null;
  setCsrf(null);
  history.replaceState(null, '', '#/login');
  showLogin();
}

async function changePassword(required) {
  await dialog({
    title: required ? L('请修改初始密码', 'Change your initial password') : L('修改密码', 'Change password'),
    testid: 'password-dialog',
    fields: [
      { name: 'old', label: L('当前密码', 'Current password'), type: 'password', required: true },
      { name: 'new', label: L('新密码', 'New password'), type: 'password', required: true,
        hint: L('至少 10 位，包含大小写字母、数字、符号中的至少 3 类', 'At least 10 characters, 3 of: lower, upper, digits, symbols') },
      { name: 'again', label: L('再次输入新密码', 'New password again'), type: 'password', required: true },
    ],
    onSubmit: async (v) => {
      if (v.new !== v.again) throw new Error(L('两次输入的新密码不一致', 'The new passwords differ'));
      try {
        await post('/me/password', { old: v.old, new: v.new });
      } catch (e) {
        const why = (e.problem.errors || e.problem.problems || []).map((x) => L(x.message_zh || x.message, x.message_en || x.message));
        throw new Error([e.message, ...why].filter(Boolean).join('；'));
      }
      toast(L('密码已修改', 'Password changed'));
      return true;
    },
  });
}

boot();
