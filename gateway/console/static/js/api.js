// The console API client: same-origin session cookie, CSRF header on every non-GET request,
// problem+json errors turned into ApiError with the message in the current language.
import { problemText, L } from './i18n.js';

export const BASE = '/console/api';
let csrfToken = null;
const expiredListeners = new Set();

export function setCsrf(token) { csrfToken = token || null; }
export function onSessionExpired(fn) { expiredListeners.add(fn); }

export class ApiError extends Error {
  constructor(status, problem) {
    super(problemText(problem) || L(`请求失败 (${status})`, `Request failed (${status})`));
    this.status = status;
    this.problem = problem || {};
    this.code = this.problem.code || `HTTP_${status}`;
  }
}

export function qs(params) {
  if (!params) return '';
  const u = new URLSearchParams();
  Object.entries(params).forEach(([k, v]) => {
    if (v === undefined || v === null || v === '') return;
    u.append(k, Array.isArray(v) ? v.join(',') : String(v));
  });
  const s = u.toString();
  return s ? `?${s}` : '';
}

async function readProblem(res) {
  try {
    const text = await res.text();
    return text ? JSON.parse(text) : {};
  } catch {
    return {};
  }
}

// opts.contentType: the body is sent as it is (a File or Blob, e.g. an imported bill), with that type.
export async function request(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  const raw = opts.contentType !== undefined;
  if (body !== undefined) headers['Content-Type'] = raw ? (opts.contentType || 'application/octet-stream') : 'application/json';
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let res;
  try {
    res = await fetch(BASE + path, { method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined || raw ? body : JSON.stringify(body), signal: opts.signal });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, { code: 'NETWORK', message_zh: '网络错误，无法连接服务器', message_en: 'Network error: the server cannot be reached' });
  }
  if (!res.ok) {
    const problem = await readProblem(res);
    const err = new ApiError(res.status, problem);
    if (res.status === 401 && !opts.noExpire && !path.startsWith('/login')) {
      expiredListeners.forEach((fn) => fn(err));
    }
    throw err;
  }
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  return type.includes('json') ? res.json() : res.text();
}

export const get = (path, params, opts) => request('GET', path + qs(params), undefined, opts);
export const post = (path, body = {}, opts) => request('POST', path, body, opts);
export const put = (path, body = {}, opts) => request('PUT', path, body, opts);
export const patch = (path, body = {}, opts) => request('PATCH', path, body, opts);
export const del = (path, opts) => request('DELETE', path, undefined, opts);
// A file as the raw request body (bill and statement imports); the query carries its name.
export const upload = (path, params, file, opts = {}) => request('POST', path + qs(params), file,
  { ...opts, contentType: file.type || 'application/octet-stream' });

// The URL of an admin route (everything under /v1/admin is mirrored at /console/api/admin).
export function adminPath(rest) { return `/admin/${rest.replace(/^\//, '')}`; }

function filenameOf(res, fallback) {
  const cd = res.headers.get('Content-Disposition') || '';
  const star = /filename\*=UTF-8''([^;]+)/i.exec(cd);
  if (star) { try { return decodeURIComponent(star[1]); } catch { /* fall through */ } }
  const plain = /filename="?([^";]+)"?/i.exec(cd);
  return plain ? plain[1] : fallback;
}

// Download a file answered by the API (an export) through the session: fetched as a blob and
// saved under the server's file name, so that an error shows as a message, not as a page.
export async function download(path, params, fallbackName) {
  const res = await fetch(BASE + path + qs(params), { credentials: 'same-origin', cache: 'no-store' });
  if (!res.ok) {
    const err = new ApiError(res.status, await readProblem(res));
    if (res.status === 401) expiredListeners.forEach((fn) => fn(err));
    throw err;
  }
  const blob = await res.blob();
  const name = filenameOf(res, fallbackName || 'export');
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return name;
}

// A text answer of the API (the printable HTML export), with the same error handling.
export async function fetchText(path, params) {
  const res = await fetch(BASE + path + qs(params), { credentials: 'same-origin', cache: 'no-store' });
  if (!res.ok) {
    const err = new ApiError(res.status, await readProblem(res));
    if (res.status === 401) expiredListeners.forEach((fn) => fn(err));
    throw err;
  }
  return res.text();
}

export function url(path, params) { return BASE + path + qs(params); }
