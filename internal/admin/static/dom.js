// Small DOM helpers. Everything that comes from the API is set as text
// (textContent or attribute values), never parsed as HTML.

// h creates an element: attrs are attributes, except on* keys, which are
// event listeners; children are nodes or strings (added as text).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// replace empties el and fills it with children.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// time shows an RFC 3339 time in the browser's zone, the exact UTC value on hover.
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h('span', {}, iso);
  return h('time', { datetime: iso, title: iso }, d.toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  }));
}

const statusTone = {
  accepted: 'pending', scheduled: 'pending', queued: 'pending', sending: 'pending', processing: 'pending',
  sent: 'good', delivered: 'good', opened: 'good', clicked: 'good', completed: 'good',
  failed: 'bad', dead: 'bad', suppressed: 'warn', canceled: 'muted',
};

// badge shows a delivery or notification status.
export function badge(status) {
  return h('span', { class: `badge ${statusTone[status] || 'muted'}`, 'data-status': status }, status);
}

// problem shows an APIError (or any error) with its detail and, for
// invalid input, each field Herald named.
export function problem(err, context) {
  const p = (err && err.problem) || {};
  const title = p.title || 'Something went wrong';
  const detail = p.detail || (err && err.message) || '';
  const fields = Array.isArray(p.errors) ? p.errors : [];
  return h('div', { class: 'problem', role: 'alert' },
    h('strong', {}, context ? `${context}: ${title}` : title),
    detail && detail !== title ? h('p', {}, detail) : null,
    fields.length ? h('ul', {}, fields.map((f) => h('li', {}, h('code', {}, f.field || '?'), ' ', f.message || ''))) : null,
    err && err.status ? h('p', { class: 'muted small' }, `HTTP ${err.status}${p.type ? ` · ${p.type}` : ''}`) : null);
}

// empty is the message of a list with nothing in it.
export function empty(title, hint) {
  return h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, title), hint ? h('p', { class: 'muted' }, hint) : null);
}

// field is a labelled form control.
export function field(label, control, hint) {
  return h('label', { class: 'field' }, h('span', { class: 'label' }, label), control, hint ? h('span', { class: 'hint' }, hint) : null);
}

// select builds a <select> of options [value, label], with value selected.
export function select(name, options, value) {
  return h('select', { name, id: name },
    options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)));
}

// dl is a definition list of [term, value] rows, skipping empty values.
export function dl(rows) {
  return h('dl', { class: 'facts' }, rows.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

const svgNS = 'http://www.w3.org/2000/svg';

// svg creates an SVG element the way h creates an HTML one: attributes
// set as values, children as nodes or text, so API data stays text.
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}
