// Notification search (GET /v1/notifications) and a notification's detail
// with each delivery's timeline (GET /v1/notifications/{id}).

import { request, query } from './api.js';
import { h, replace, time, badge, problem, empty, field, select, dl } from './dom.js';

const statuses = ['accepted', 'scheduled', 'queued', 'sending', 'sent', 'delivered', 'opened', 'clicked',
  'failed', 'suppressed', 'canceled', 'dead'];
const channels = ['email', 'sms', 'push'];
const pageSize = 20;

// Deliveries in these states are moving: the detail page keeps refreshing.
const inFlight = new Set(['accepted', 'queued', 'sending']);
const refreshEvery = 2000;

function notificationHref(id) {
  return `#/notifications/${encodeURIComponent(id)}`;
}

// rfc3339 turns a datetime-local value into UTC without fractions.
function rfc3339(local) {
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// localInput turns an RFC 3339 time into a datetime-local value.
function localInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function searchPage(main, params, ctx) {
  let alive = true;
  const filter = {
    user_id: params.get('user_id') || '', status: params.get('status') || '',
    channel: params.get('channel') || '', since: params.get('since') || '',
  };

  const userInput = h('input', { name: 'user_id', id: 'user_id', value: filter.user_id, placeholder: 'e.g. 123', spellcheck: 'false' });
  const statusSelect = select('status', [['', 'any status'], ...statuses.map((s) => [s, s])], filter.status);
  const channelSelect = select('channel', [['', 'any channel'], ...channels.map((c) => [c, c])], filter.channel);
  const sinceInput = h('input', { name: 'since', id: 'since', type: 'datetime-local', value: filter.since ? localInput(filter.since) : '' });
  const form = h('form', { class: 'filters', id: 'search-form', role: 'search' },
    field('User ID', userInput),
    field('Delivery status', statusSelect),
    field('Channel', channelSelect),
    field('Since', sinceInput),
    h('div', { class: 'actions' },
      h('button', { type: 'submit' }, 'Search'),
      h('button', { type: 'button', class: 'secondary', onclick: () => ctx.navigate('#/notifications') }, 'Clear')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const since = sinceInput.value ? rfc3339(sinceInput.value) : '';
    ctx.navigate(`#/notifications${query({
      user_id: userInput.value.trim(), status: statusSelect.value, channel: channelSelect.value, since,
    })}`);
  });

  const results = h('div', { id: 'results', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading\u2026'));
  replace(main,
    h('section', { class: 'panel' },
      h('h1', {}, 'Notifications'),
      h('p', { class: 'muted' }, 'Find what was sent to a user: newest first, with each delivery\u2019s channel and status.'),
      form),
    results);

  const tbody = h('tbody');
  const more = h('div', { class: 'more' });
  let shown = 0;

  async function load(cursor) {
    let page;
    try {
      page = await request('GET', `/v1/notifications${query({ ...filter, limit: pageSize, cursor })}`);
    } catch (err) {
      if (!alive) return;
      if (cursor) replace(more, problem(err, 'Could not load more'));
      else replace(results, problem(err, 'Search failed'));
      return;
    }
    if (!alive) return;
    if (!cursor) {
      if (page.data.length === 0) {
        const narrowed = Object.values(filter).some(Boolean);
        replace(results, empty('No notifications found.',
          narrowed ? 'Nothing matches these filters. Try a wider status, channel or time.' : 'Nothing has been sent with this app yet.'));
        return;
      }
      replace(results, h('div', { class: 'table-wrap' }, h('table', { class: 'list', id: 'notifications-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Created'), h('th', {}, 'Notification'), h('th', {}, 'Status'),
          h('th', {}, 'Category'), h('th', {}, 'Deliveries'))),
        tbody)), more);
    }
    for (const n of page.data) {
      const deliveries = h('td', { class: 'deliveries' }, h('span', { class: 'muted' }, '\u2026'));
      tbody.appendChild(h('tr', { 'data-id': n.id },
        h('td', { class: 'nowrap' }, time(n.created_at)),
        h('td', {}, h('a', { href: notificationHref(n.id), class: 'mono' }, n.id),
          n.priority === 'high' ? h('span', { class: 'tag' }, 'high') : null),
        h('td', {}, badge(n.status)),
        h('td', {}, n.category || h('span', { class: 'muted' }, '—')),
        deliveries));
      fillDeliveries(n.id, deliveries);
    }
    shown += page.data.length;
    if (page.next_cursor) {
      replace(more, h('button', { type: 'button', class: 'secondary', onclick: () => {
        replace(more, h('span', { class: 'muted' }, 'Loading\u2026'));
        load(page.next_cursor);
      } }, 'Load more'), h('span', { class: 'muted' }, ` ${shown} shown`));
    } else {
      replace(more, h('span', { class: 'muted' }, `${shown} shown \u00b7 end of the list`));
    }
  }

  // The list answers summaries only; each row's deliveries come from its detail.
  async function fillDeliveries(id, cell) {
    try {
      const n = await request('GET', `/v1/notifications/${encodeURIComponent(id)}`);
      if (!alive) return;
      if (!n.deliveries.length) {
        replace(cell, h('span', { class: 'muted' }, 'none'));
        return;
      }
      replace(cell, n.deliveries.map((d) => h('span', { class: 'chip' },
        h('span', { class: 'chip-label' }, `${d.channel}${d.user_id ? ` \u00b7 ${d.user_id}` : ''}`), badge(d.status))));
    } catch (err) {
      if (alive) replace(cell, h('span', { class: 'error small' }, err.message));
    }
  }

  load('');
  return () => { alive = false; };
}

export function detailPage(main, id, ctx) {
  let alive = true;
  let timer = null;
  const body = h('div', { id: 'detail' }, h('p', { class: 'muted' }, 'Loading\u2026'));
  const live = h('span', { id: 'live', class: 'live', 'aria-live': 'polite' });
  replace(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/notifications' }, '\u2190 Notifications')),
    h('section', { class: 'panel' },
      h('div', { class: 'title-row' }, h('h1', {}, 'Notification'), live,
        h('button', { type: 'button', class: 'secondary', onclick: () => refresh() }, 'Refresh')),
      body));

  async function refresh() {
    clearTimeout(timer);
    let n;
    try {
      n = await request('GET', `/v1/notifications/${encodeURIComponent(id)}`);
    } catch (err) {
      if (!alive) return;
      replace(body, problem(err, 'Could not load the notification'));
      replace(live);
      return;
    }
    if (!alive) return;
    renderNotification(body, n);
    const moving = n.deliveries.some((d) => inFlight.has(d.status));
    if (moving) {
      replace(live, h('span', { class: 'pulse' }), `Live \u00b7 refreshing every ${refreshEvery / 1000} s while deliveries are in flight`);
      timer = setTimeout(refresh, refreshEvery);
    } else {
      replace(live, h('span', { class: 'muted' }, `Updated ${new Date().toLocaleTimeString()}`));
    }
  }

  refresh();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}

function renderNotification(body, n) {
  replace(body,
    dl([
      ['ID', h('span', { class: 'mono', id: 'notification-id' }, n.id)],
      ['Status', badge(n.status)],
      ['Category', n.category],
      ['Priority', n.priority],
      ['Created', time(n.created_at)],
    ]),
    h('h2', {}, `Deliveries (${n.deliveries.length})`),
    n.deliveries.length
      ? h('div', { class: 'deliveries-list' }, n.deliveries.map(renderDelivery))
      : empty('No deliveries.', 'No recipient could be reached on any channel.'));
}

function renderDelivery(d) {
  return h('article', { class: 'delivery', 'data-delivery': d.id, 'data-status': d.status },
    h('header', {},
      h('span', { class: 'channel' }, d.channel),
      d.user_id ? h('span', {}, 'user ', h('strong', {}, d.user_id)) : null,
      d.address ? h('span', { class: 'muted' }, d.address) : null,
      d.platform ? h('span', { class: 'muted' }, d.platform) : null,
      badge(d.status),
      d.reason ? h('span', { class: 'reason' }, d.reason) : null),
    d.possible_duplicate
      ? h('p', { class: 'warning' }, 'Possible duplicate: an attempt\u2019s outcome was unknown, so the provider may have received this twice.')
      : null,
    dl([
      ['Delivery', h('span', { class: 'mono' }, d.id)],
      ['Provider', d.provider],
      ['Provider message', d.provider_message_id ? h('span', { class: 'mono' }, d.provider_message_id) : ''],
      ['Attempts', String(d.attempts)],
      ['Updated', time(d.updated_at)],
    ]),
    h('ol', { class: 'timeline' }, d.timeline.map((e) => h('li', { 'data-status': e.status },
      h('span', { class: 'dot' }),
      h('div', { class: 'event' },
        h('div', {}, badge(e.status), ' ', time(e.at),
          e.attempt ? h('span', { class: 'muted' }, ` \u00b7 attempt ${e.attempt}`) : null,
          e.provider ? h('span', { class: 'muted' }, ` \u00b7 ${e.provider}`) : null,
          e.reason ? h('span', { class: 'reason' }, e.reason) : null),
        e.detail ? h('div', { class: 'detail' }, e.detail) : null)))));
}
