// The templates page: the app's templates (GET /v1/templates), each a link
// to its editor, and the preview (POST /v1/templates/{name}/preview):
// render a saved template with sample data and a locale, and show every
// part. Email HTML is shown only inside a sandboxed frame without scripts.

import { request } from './api.js';
import { h, replace, problem, empty, field, dl, time } from './dom.js';

// The form keeps its values while the tab lives, so a preview can be
// tweaked after a look at another page.
const state = { name: '', locale: '', version: '', data: '{\n  "name": "Ada"\n}' };

export function templatesPage(main, params, ctx) {
  let alive = true;
  if (params.get('name')) state.name = params.get('name');

  const names = h('datalist', { id: 'template-names' });
  const nameInput = h('input', { name: 'name', id: 'template-name', required: true, value: state.name, list: 'template-names',
    placeholder: 'password-reset', spellcheck: 'false' });
  const localeInput = h('input', { name: 'locale', id: 'template-locale', value: state.locale, placeholder: 'de', spellcheck: 'false' });
  const versionInput = h('input', { name: 'version', id: 'template-version', type: 'number', min: '1', value: state.version, placeholder: 'latest' });
  const dataInput = h('textarea', { name: 'data', id: 'template-data', rows: '8', spellcheck: 'false' });
  dataInput.value = state.data;
  const button = h('button', { type: 'submit' }, 'Preview');
  const output = h('div', { id: 'preview', 'aria-live': 'polite' });

  const form = h('form', { class: 'preview-form', id: 'preview-form' },
    h('div', { class: 'row' },
      field('Template', nameInput),
      field('Locale', localeInput, 'empty: the app\u2019s default'),
      field('Version', versionInput, 'empty: the latest')),
    field('Data (JSON)', dataInput, 'the values the template reads, as a send\u2019s "data" would carry them'),
    h('div', { class: 'actions' }, button));

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    Object.assign(state, { name: nameInput.value.trim(), locale: localeInput.value.trim(), version: versionInput.value, data: dataInput.value });
    let data;
    try {
      data = state.data.trim() ? JSON.parse(state.data) : {};
      if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new Error('it must be a JSON object');
    } catch (err) {
      replace(output, problem({ problem: { title: 'Invalid data', detail: `The data is not usable: ${err.message}.`,
        errors: [{ field: 'data', message: 'must be a JSON object, e.g. {"name": "Ada"}' }] } }));
      return;
    }
    const body = { data };
    if (state.locale) body.locale = state.locale;
    if (state.version) body.version = Number(state.version);
    button.disabled = true;
    replace(output, h('p', { class: 'muted' }, 'Rendering\u2026'));
    try {
      const r = await request('POST', `/v1/templates/${encodeURIComponent(state.name)}/preview`, body);
      if (alive) renderPreview(output, r);
    } catch (err) {
      if (!alive) return;
      const hint = err.status === 404
        ? h('p', { class: 'muted' }, 'Check the name: templates are saved with PUT /v1/templates/{name}.')
        : null;
      replace(output, problem(err, 'Preview failed'), hint);
    } finally {
      button.disabled = false;
    }
  });

  const list = h('div', { id: 'templates-list' }, h('p', { class: 'muted' }, 'Loading\u2026'));
  const newName = h('input', { id: 'new-template-name', name: 'new_name', required: true, placeholder: 'order-shipped',
    spellcheck: 'false', pattern: '[A-Za-z0-9][A-Za-z0-9._-]*' });
  const newForm = h('form', { class: 'filters', id: 'new-template-form' },
    field('New template', newName), h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Create')));
  newForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const n = newName.value.trim();
    if (n) ctx.navigate(editorHref(n));
  });

  replace(main,
    h('section', { class: 'panel' },
      h('h1', {}, 'Templates'),
      h('p', { class: 'muted' }, 'Open a template to edit its parts; every save is a new version.'),
      list, newForm),
    h('section', { class: 'panel' },
      h('h2', {}, 'Template preview'),
      h('p', { class: 'muted' }, 'Render a saved template with sample data, as a recipient of that locale would get it.'),
      form, names),
    output);

  // List the app's templates and offer their names when this key may.
  request('GET', '/v1/templates?limit=500').then((res) => {
    if (!alive || !res || !Array.isArray(res.data)) return;
    replace(names, res.data.map((t) => h('option', { value: t.name })));
    replace(list, res.data.length
      ? h('table', { class: 'list compact', id: 'templates-table' },
        h('thead', {}, h('tr', {}, ['Name', 'Version', 'Saved', 'Parts'].map((t) => h('th', {}, t)))),
        h('tbody', {}, res.data.map((t) => h('tr', { 'data-name': t.name },
          h('td', {}, h('a', { href: editorHref(t.name), class: 'edit' }, t.name)),
          h('td', {}, String(t.version)),
          h('td', {}, time(t.created_at)),
          h('td', { class: 'muted' }, ['email', 'sms', 'push'].filter((c) => t[c]).join(', ') +
            (t.locales ? ` \u00b7 ${Object.keys(t.locales).sort().join(', ')}` : ''))))))
      : empty('No templates yet.', 'Create one below.'));
  }, (err) => {
    if (alive) replace(list, problem(err, 'Could not list the templates'));
  });

  return () => { alive = false; };
}

function editorHref(name) {
  return `#/templates/${encodeURIComponent(name)}`;
}

// renderPreview shows a preview answer; the editor uses it too.
export function renderPreview(output, r) {
  const parts = [];
  if (r.email) {
    const frame = h('iframe', {
      class: 'email-frame', id: 'email-html', title: 'Email HTML, rendered without scripts',
      sandbox: true, referrerpolicy: 'no-referrer', loading: 'lazy',
    });
    // srcdoc is an attribute value: the HTML is parsed only inside the
    // sandboxed frame, never into this page.
    frame.setAttribute('srcdoc', r.email.html || '');
    parts.push(h('article', { class: 'panel part', id: 'part-email' },
      h('h2', {}, 'Email'),
      dl([['Subject', h('strong', { id: 'email-subject' }, r.email.subject || '')]]),
      r.email.html ? h('div', { class: 'frame-wrap' }, frame) : h('p', { class: 'muted' }, 'No HTML part.'),
      r.email.text ? [h('h3', {}, 'Plain text'), h('pre', { id: 'email-text' }, r.email.text)] : null));
  }
  if (r.sms) {
    parts.push(h('article', { class: 'panel part', id: 'part-sms' },
      h('h2', {}, 'SMS'),
      h('pre', { id: 'sms-text' }, r.sms.text || ''),
      h('p', { class: 'muted small' }, `${[...(r.sms.text || '')].length} characters`)));
  }
  if (r.push) {
    parts.push(h('article', { class: 'panel part', id: 'part-push' },
      h('h2', {}, 'Push'),
      h('div', { class: 'push-card' },
        h('strong', { id: 'push-title' }, r.push.title || ''),
        h('p', { id: 'push-body' }, r.push.body || '')),
      dl([
        ['Opens', r.push.url ? h('span', { class: 'mono' }, r.push.url) : ''],
        ['Data', r.push.data && Object.keys(r.push.data).length ? h('pre', {}, JSON.stringify(r.push.data, null, 2)) : ''],
      ])));
  }
  const heading = h('p', { class: 'preview-meta' }, 'Rendered ', h('strong', {}, r.name || ''),
    r.version ? ` version ${r.version}` : '', ' \u00b7 ', r.locale ? `locale ${r.locale}` : 'base parts');
  replace(output, heading, parts.length ? h('div', { class: 'parts' }, parts) : empty('This template has no parts.'));
}
