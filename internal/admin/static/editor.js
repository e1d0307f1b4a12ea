// The template editor: open a template (GET /v1/templates/{name}), edit
// the parts of its base and of each locale, save them as a new version
// (PUT /v1/templates/{name}) and preview the result with sample data.
// A part that does not parse comes back as Herald's 422 naming the field
// and the line; the editor marks that field.

import { request } from './api.js';
import { h, replace, problem, field, time } from './dom.js';
import { renderPreview } from './templates.js';

// The editable fields of a variant, by channel: [channel, key, label, rows].
const parts = [
  ['email', 'subject', 'Email subject', 0],
  ['email', 'html', 'Email HTML', 8],
  ['email', 'text', 'Email plain text', 4],
  ['sms', 'text', 'SMS text', 3],
  ['push', 'title', 'Push title', 0],
  ['push', 'body', 'Push body', 3],
  ['push', 'url', 'Push link (url)', 0],
];

function controlID(channel, key) {
  return `edit-${channel}-${key}`;
}

export function editorPage(main, name, ctx) {
  let alive = true;
  // model holds every variant: '' is the base parts, others are locales.
  let model = { '': {} };
  let current = '';

  const heading = h('p', { class: 'muted', id: 'editor-version' }, 'Loading\u2026');
  const variantSelect = h('select', { id: 'editor-variant', name: 'variant' });
  const newLocale = h('input', { id: 'editor-new-locale', placeholder: 'add a locale, e.g. fr', spellcheck: 'false', size: '10' });
  const controls = {};
  const fieldErrors = {};
  const fieldset = h('div', { class: 'editor-fields' }, parts.map(([channel, key, label, rows]) => {
    const id = controlID(channel, key);
    const control = rows
      ? h('textarea', { id, name: id, rows: String(rows), spellcheck: 'false' })
      : h('input', { id, name: id, spellcheck: 'false' });
    controls[`${channel}.${key}`] = control;
    fieldErrors[`${channel}.${key}`] = h('span', { class: 'field-error', id: `${id}-error`, role: 'alert' });
    return h('label', { class: 'field' }, h('span', { class: 'label' }, label), control, fieldErrors[`${channel}.${key}`]);
  }));
  const saveButton = h('button', { type: 'submit' }, 'Save as a new version');
  const outcome = h('div', { id: 'editor-outcome', 'aria-live': 'polite' });
  const form = h('form', { class: 'preview-form', id: 'editor-form' },
    h('div', { class: 'row' },
      h('label', { class: 'field' }, h('span', { class: 'label' }, 'Variant'), variantSelect),
      h('label', { class: 'field' }, h('span', { class: 'label' }, 'New locale'), newLocale)),
    fieldset,
    h('p', { class: 'muted small' }, 'Go template syntax: ', h('code', {}, '{{.name}}'),
      '. Leave every field of a channel empty to drop that channel. Push data is kept as it is.'),
    h('div', { class: 'actions' }, saveButton),
    outcome);

  // Preview of the saved version, with the preview page's renderer.
  const dataInput = h('textarea', { id: 'editor-data', rows: '5', spellcheck: 'false' });
  dataInput.value = '{\n  "name": "Ada"\n}';
  const previewButton = h('button', { type: 'submit', class: 'secondary' }, 'Preview the saved version');
  const preview = h('div', { id: 'preview', 'aria-live': 'polite' });
  const previewForm = h('form', { class: 'preview-form', id: 'editor-preview-form' },
    field('Data (JSON)', dataInput, 'rendered for the variant chosen above'), h('div', { class: 'actions' }, previewButton));

  // keep copies the fields into the model's current variant.
  function keep() {
    const v = model[current] || (model[current] = {});
    for (const [channel, key] of parts) {
      const value = controls[`${channel}.${key}`].value;
      if (value) (v[channel] ||= {})[key] = value;
      else if (v[channel]) delete v[channel][key];
    }
  }

  function show(variant) {
    current = variant;
    const v = model[variant] || {};
    for (const [channel, key] of parts) controls[`${channel}.${key}`].value = (v[channel] && v[channel][key]) || '';
    replace(variantSelect, Object.keys(model).sort().map((k) =>
      h('option', { value: k, selected: k === variant }, k === '' ? 'Base parts' : `Locale ${k}`)));
  }

  variantSelect.addEventListener('change', () => {
    keep();
    show(variantSelect.value);
  });
  // Enter adds the locale rather than saving the form.
  newLocale.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter') return;
    ev.preventDefault();
    newLocale.dispatchEvent(new Event('change'));
  });
  newLocale.addEventListener('change', () => {
    const loc = newLocale.value.trim();
    if (!loc) return;
    keep();
    if (!model[loc]) model[loc] = {};
    newLocale.value = '';
    show(loc);
  });

  // body builds the PUT body: channels without text are left out; push
  // data, which the editor does not show, rides along.
  function partsOf(v) {
    const out = {};
    for (const channel of ['email', 'sms', 'push']) {
      const p = v[channel];
      if (!p) continue;
      const filled = Object.entries(p).filter(([k, val]) => (k === 'data' ? val && Object.keys(val).length : val));
      if (filled.some(([k]) => k !== 'data')) out[channel] = Object.fromEntries(filled);
    }
    return out;
  }
  function body() {
    const out = partsOf(model[''] || {});
    const locales = {};
    for (const [loc, v] of Object.entries(model)) {
      if (loc === '') continue;
      const p = partsOf(v);
      if (Object.keys(p).length) locales[loc] = p;
    }
    if (Object.keys(locales).length) out.locales = locales;
    return out;
  }

  function clearErrors() {
    for (const [k, el] of Object.entries(fieldErrors)) {
      replace(el);
      controls[k].removeAttribute('aria-invalid');
    }
  }

  // markErrors puts each field error of a 422 next to its control when the
  // field belongs to the variant on screen ("email.html", "locales.de.sms.text").
  function markErrors(err) {
    const list = (err.problem && Array.isArray(err.problem.errors)) ? err.problem.errors : [];
    for (const fe of list) {
      let path = fe.field || '';
      let variant = '';
      const m = /^locales\.([^.]+)\.(.*)$/.exec(path);
      if (m) [, variant, path] = m;
      if (variant !== current || !controls[path]) continue;
      controls[path].setAttribute('aria-invalid', 'true');
      replace(fieldErrors[path], fe.message || 'invalid');
    }
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    keep();
    clearErrors();
    saveButton.disabled = true;
    replace(outcome, h('p', { class: 'muted' }, 'Saving\u2026'));
    try {
      const t = await request('PUT', `/v1/templates/${encodeURIComponent(name)}`, body());
      if (!alive) return;
      replace(heading, `Version ${t.version}, saved `, time(t.created_at));
      replace(outcome, h('div', { class: 'success', id: 'editor-saved' }, `Saved as version ${t.version}.`));
    } catch (err) {
      if (!alive) return;
      markErrors(err);
      replace(outcome, problem(err, 'Not saved'));
    } finally {
      saveButton.disabled = false;
    }
  });

  previewForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    let data;
    try {
      data = dataInput.value.trim() ? JSON.parse(dataInput.value) : {};
      if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new Error('it must be a JSON object');
    } catch (err) {
      replace(preview, problem({ problem: { title: 'Invalid data', detail: `The data is not usable: ${err.message}.`,
        errors: [{ field: 'data', message: 'must be a JSON object, e.g. {"name": "Ada"}' }] } }));
      return;
    }
    const req = { data };
    if (current) req.locale = current;
    previewButton.disabled = true;
    try {
      const r = await request('POST', `/v1/templates/${encodeURIComponent(name)}/preview`, req);
      if (alive) renderPreview(preview, r);
    } catch (err) {
      if (alive) replace(preview, problem(err, 'Preview failed'));
    } finally {
      previewButton.disabled = false;
    }
  });

  replace(main,
    h('section', { class: 'panel' },
      h('p', { class: 'crumbs' }, h('a', { href: '#/templates' }, '\u2190 Templates')),
      h('h1', { id: 'editor-name' }, name),
      heading,
      form),
    h('section', { class: 'panel' }, h('h2', {}, 'Preview'), previewForm),
    preview);

  request('GET', `/v1/templates/${encodeURIComponent(name)}`).then((t) => {
    if (!alive) return;
    model = { '': { email: t.email, sms: t.sms, push: t.push } };
    for (const [loc, p] of Object.entries(t.locales || {})) model[loc] = { ...p };
    for (const v of Object.values(model)) for (const c of ['email', 'sms', 'push']) v[c] = v[c] ? { ...v[c] } : undefined;
    replace(heading, `Version ${t.version}, saved `, time(t.created_at));
    show('');
  }, (err) => {
    if (!alive) return;
    if (err.status === 404) {
      replace(heading, 'A new template: its first save is version 1.');
      show('');
      return;
    }
    replace(heading);
    replace(outcome, problem(err, 'Could not open the template'));
  });
  show('');

  return () => { alive = false; };
}
