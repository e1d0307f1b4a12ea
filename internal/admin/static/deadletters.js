// Dead letters (GET /v1/dead-letters): deliveries whose retries ran out,
// with each attempt's error, and their replay
// (POST /v1/dead-letters/{delivery_id}/replay).

import { request, query } from './api.js';
import { h, replace, time, badge, problem, empty, field, select } from './dom.js';

const pageSize = 20;

export function deadLettersPage(main, params, ctx) {
  let alive = true;
  const channel = params.get('channel') || '';
  const channelSelect = select('channel', [['', 'any channel'], ['email', 'email'], ['sms', 'sms'], ['push', 'push']], channel);
  channelSelect.addEventListener('change', () => ctx.navigate(`#/dead-letters${query({ channel: channelSelect.value })}`));

  const list = h('div', { id: 'dead-letters', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading\u2026'));
  const more = h('div', { class: 'more' });
  replace(main,
    h('section', { class: 'panel' },
      h('div', { class: 'title-row' }, h('h1', {}, 'Dead letters'),
        h('form', { class: 'inline', onsubmit: (ev) => ev.preventDefault() }, field('Channel', channelSelect))),
      h('p', { class: 'muted' }, 'Deliveries whose retries ran out. Replaying one gives it a fresh budget of attempts; ',
        'it needs an admin key.')),
    list, more);

  let shown = 0;
  async function load(cursor) {
    let page;
    try {
      page = await request('GET', `/v1/dead-letters${query({ channel, limit: pageSize, cursor })}`);
    } catch (err) {
      if (!alive) return;
      replace(cursor ? more : list, problem(err, 'Could not load dead letters'));
      return;
    }
    if (!alive) return;
    if (!cursor) {
      replace(list);
      if (page.data.length === 0) {
        replace(list, empty('No dead letters.', 'Every delivery either went out or is still being retried.'));
        return;
      }
    }
    for (const dl of page.data) list.appendChild(card(dl));
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

  function card(dl) {
    const outcome = h('div', { class: 'outcome', 'aria-live': 'polite' });
    const button = h('button', { type: 'button', class: 'replay' }, 'Replay');
    let confirmed = !dl.possible_duplicate;
    button.addEventListener('click', async () => {
      if (!confirmed) {
        // A provider may already have it: replay only on a second, deliberate click.
        confirmed = true;
        button.textContent = 'Replay anyway (may send twice)';
        button.classList.add('danger');
        return;
      }
      button.disabled = true;
      replace(outcome, h('span', { class: 'muted' }, 'Replaying\u2026'));
      try {
        const d = await request('POST', `/v1/dead-letters/${encodeURIComponent(dl.id)}/replay`);
        if (!alive) return;
        button.textContent = 'Replayed';
        replace(outcome, h('p', { class: 'success', role: 'status' }, 'Replay accepted: the delivery is ', badge(d.status),
          ' again. ', h('a', { href: `#/notifications/${encodeURIComponent(dl.notification_id)}` }, 'Watch it'), '.'));
      } catch (err) {
        if (!alive) return;
        button.disabled = false;
        replace(outcome, problem(err, 'Replay refused'));
      }
    });
    return h('article', { class: 'panel dead-letter', 'data-delivery': dl.id },
      h('header', {},
        h('span', { class: 'channel' }, dl.channel),
        dl.user_id ? h('span', {}, 'user ', h('strong', {}, dl.user_id)) : null,
        badge('dead'),
        h('span', { class: 'reason' }, dl.reason),
        h('span', { class: 'muted' }, `${dl.attempts} attempt${dl.attempts === 1 ? '' : 's'} \u00b7 dead `, time(dl.dead_at)),
        h('span', { class: 'spacer' }),
        button),
      dl.possible_duplicate
        ? h('p', { class: 'warning' }, 'Possible duplicate: an attempt\u2019s outcome was unknown, so the provider may have it already.')
        : null,
      h('p', { class: 'small' }, 'Delivery ', h('span', { class: 'mono' }, dl.id), ' of notification ',
        h('a', { class: 'mono', href: `#/notifications/${encodeURIComponent(dl.notification_id)}` }, dl.notification_id)),
      dl.errors.length
        ? h('table', { class: 'list compact' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Attempt'), h('th', {}, 'At'), h('th', {}, 'Provider'), h('th', {}, 'Error'))),
          h('tbody', {}, dl.errors.map((e) => h('tr', {},
            h('td', {}, String(e.attempt)), h('td', { class: 'nowrap' }, time(e.at)),
            h('td', {}, e.provider || '—'), h('td', { class: 'detail' }, e.detail)))))
        : h('p', { class: 'muted' }, 'No error was recorded for its attempts.'),
      outcome);
  }

  load('');
  return () => { alive = false; };
}
