// A tiny element builder. Text always goes in as text nodes (never innerHTML), events are
// attached with addEventListener: the page's CSP forbids inline handlers and styles.
const SVG_NS = 'http://www.w3.org/2000/svg';

function apply(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') {
      el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    } else if (k === 'dataset') {
      Object.entries(v).forEach(([dk, dv]) => { if (dv !== undefined && dv !== null) el.dataset[dk] = dv; });
    } else if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === 'value' && 'value' in el && el.namespaceURI !== SVG_NS) {
      el.value = v;
    } else if ((k === 'checked' || k === 'disabled' || k === 'selected') && el.namespaceURI !== SVG_NS) {
      el[k] = !!v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// h('div', {class: 'x', onClick: fn}, 'text', child, [more]); attrs may be omitted.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
  } else {
    apply(el, attrs);
  }
  append(el, children);
  return el;
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

export function mount(el, ...children) { clear(el); append(el, children); return el; }

export function $(sel, root = document) { return root.querySelector(sel); }

// Form values of the named controls inside root, as strings (checkboxes as booleans).
export function formValues(root) {
  const out = {};
  root.querySelectorAll('input[name], select[name], textarea[name]').forEach((el) => {
    out[el.name] = el.type === 'checkbox' ? el.checked : el.value.trim();
  });
  return out;
}

// Small inline icons (stroke paths), drawn as SVG so that no image file or font is needed.
const ICONS = {
  overview: 'M3 13h4v8H3zM10 8h4v13h-4zM17 3h4v18h-4z',
  transactions: 'M4 6h16M4 12h16M4 18h10',
  cases: 'M12 3l9 16H3zM12 10v4M12 17v.5',
  approvals: 'M5 12l4 4 10-10M4 20h16',
  recon: 'M4 5h16v15H4zM4 9h16M9 3v4M15 3v4M8 14l2 2 4-4',
  reports: 'M6 3h9l4 4v14H6zM9 12h7M9 16h7M9 8h3',
  config: 'M12 8a4 4 0 100 8 4 4 0 000-8zM12 2v3M12 19v3M2 12h3M19 12h3M4.9 4.9l2.1 2.1M17 17l2.1 2.1M4.9 19.1L7 17M17 7l2.1-2.1',
  system: 'M12 12a4 4 0 100-8 4 4 0 000 8zM4 21c0-4 4-6 8-6s8 2 8 6',
  warn: 'M12 3l9 16H3zM12 10v4M12 17v.5',
  globe: 'M12 3a9 9 0 100 18 9 9 0 000-18zM3 12h18M12 3c3 3 3 15 0 18M12 3c-3 3-3 15 0 18',
};
export function icon(name, cls) {
  return svg('svg', { viewBox: '0 0 24 24', class: cls || 'icon', 'aria-hidden': 'true' },
    svg('path', { d: ICONS[name] || ICONS.overview, fill: 'none', stroke: 'currentColor', 'stroke-width': 2,
      'stroke-linecap': 'round', 'stroke-linejoin': 'round' }));
}
