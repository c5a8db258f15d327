// Language: zh-CN first, English on request; the choice is kept in localStorage.
const KEY = 'yinyi.console.lang';
let current = 'zh';
try {
  current = localStorage.getItem(KEY) === 'en' ? 'en' : 'zh';
} catch { /* storage may be disabled; stay in Chinese */ }
const listeners = new Set();

export function lang() { return current; }

export function setLang(value) {
  current = value === 'en' ? 'en' : 'zh';
  try { localStorage.setItem(KEY, current); } catch { /* ignore */ }
  document.documentElement.lang = current === 'en' ? 'en' : 'zh-CN';
  listeners.forEach((fn) => fn(current));
}

export function onLang(fn) { listeners.add(fn); return () => listeners.delete(fn); }

// L('中文', 'English'): the text in the current language. Pages keep both next to each other.
export function L(zh, en) { return current === 'en' && en !== undefined ? en : zh; }

// Pick from a bilingual pair ([zh, en]) or from an object with *_zh / *_en members.
export function pick(pair) {
  if (Array.isArray(pair)) return L(pair[0], pair[1]);
  return pair;
}

// The message of a problem+json answer in the current language.
export function problemText(p) {
  if (!p) return '';
  const main = current === 'en' ? (p.message_en || p.title || p.message_zh) : (p.message_zh || p.title || p.message_en);
  return main || p.detail || p.code || '';
}

document.documentElement.lang = current === 'en' ? 'en' : 'zh-CN';
