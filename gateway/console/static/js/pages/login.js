// 登录: username + password, then the TOTP code (or the enrolment of a new authenticator).
import { h, mount } from '../dom.js';
import { post } from '../api.js';
import { L, lang, setLang } from '../i18n.js';

function secretOf(uri) {
  const m = /[?&]secret=([A-Z2-7]+)/i.exec(uri || '');
  return m ? m[1].replace(/(.{4})/g, '$1 ').trim() : '';
}

export function render(root, { onDone }) {
  const card = h('div', { class: 'login-card', dataset: { testid: 'login' } });
  mount(root, h('div', { class: 'login-page' }, card));

  const brand = () => h('div', { class: 'brand-big' }, h('img', { src: '/console/static/img/logo.svg', alt: '' }),
    h('div', null, h('h1', null, L('银医 · 财务管理后台', 'yinyi finance console')),
      h('p', null, L('统一支付与对账平台', 'Unified payments and reconciliation'))));
  const foot = () => h('div', { class: 'foot' }, h('span', null, L('仅限医院内网使用', 'Hospital intranet only')),
    h('a', { dataset: { testid: 'lang' }, onClick: () => setLang(lang() === 'zh' ? 'en' : 'zh') }, lang() === 'zh' ? 'English' : '中文'));

  function stepPassword(message) {
    const err = h('div', { class: 'form-error', dataset: { testid: 'login-error' } }, message || '');
    const user = h('input', { name: 'username', autocomplete: 'username', placeholder: L('用户名', 'Username'), required: true });
    const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', placeholder: L('密码', 'Password'), required: true });
    const btn = h('button', { class: 'primary', type: 'submit' }, L('登录', 'Log in'));
    const form = h('form', { onSubmit: async (e) => {
      e.preventDefault();
      btn.disabled = true;
      err.textContent = '';
      try {
        const out = await post('/login', { username: user.value.trim(), password: pass.value });
        if (out.totp_enrolment) stepTotp(out.login_token, out.otpauth_uri);
        else if (out.totp_required) stepTotp(out.login_token, null);
        else if (out.user) onDone(out);
      } catch (ex) {
        err.textContent = ex.status === 423
          ? ex.message
          : (ex.message || L('登录失败', 'Login failed'));
        btn.disabled = false;
      }
    } }, h('label', { class: 'field' }, h('span', null, L('用户名', 'Username')), user),
    h('label', { class: 'field' }, h('span', null, L('密码', 'Password')), pass), err, btn);
    mount(card, brand(), form, foot());
    user.focus();
  }

  function stepTotp(token, uri) {
    const err = h('div', { class: 'form-error', dataset: { testid: 'login-error' } });
    const code = h('input', { name: 'code', class: 'code-input', inputmode: 'numeric', autocomplete: 'one-time-code',
      maxlength: 6, pattern: '[0-9]{6}', placeholder: '······', required: true });
    const btn = h('button', { class: 'primary', type: 'submit' }, uri ? L('绑定并登录', 'Enrol and log in') : L('验证', 'Verify'));
    const enrol = uri ? h('div', { class: 'stack', dataset: { testid: 'totp-enrolment' } },
      h('div', { class: 'alert info' }, L('首次登录需绑定身份验证器（如 Google Authenticator、Microsoft Authenticator、FreeOTP）。在 App 中选择「输入设置密钥」，填入下方密钥或导入链接，然后输入 App 显示的 6 位动态码。',
        'First login: add this account to an authenticator app (Google Authenticator, Microsoft Authenticator, FreeOTP …). Choose "enter a setup key", use the key or the link below, then type the 6-digit code it shows.')),
      h('label', { class: 'field' }, h('span', null, L('密钥', 'Setup key')), h('div', { class: 'otp-uri mono', dataset: { testid: 'totp-secret' } }, secretOf(uri))),
      h('label', { class: 'field' }, h('span', null, L('导入链接 (otpauth)', 'Import link (otpauth)')), h('div', { class: 'otp-uri mono', dataset: { testid: 'otpauth-uri' } }, uri))) : null;
    const form = h('form', { onSubmit: async (e) => {
      e.preventDefault();
      btn.disabled = true;
      err.textContent = '';
      try {
        const out = await post('/login/totp', { login_token: token, code: code.value.trim() });
        onDone(out);
      } catch (ex) {
        if (ex.code === 'CONSOLE_LOGIN_EXPIRED') { stepPassword(ex.message); return; }
        err.textContent = ex.message;
        btn.disabled = false;
        code.select();
      }
    } }, enrol,
    h('label', { class: 'field' }, h('span', null, L('动态验证码', 'Verification code')), code), err, btn,
    h('a', { onClick: () => stepPassword() }, L('‹ 返回', '‹ Back')));
    mount(card, brand(), form, foot());
    code.focus();
  }

  stepPassword();
}
