// The overview: the system at a glance. The delivery funnel and counts by
// status for a period (GET /v1/analytics), and, refreshed every few
// seconds, the recent throughput, the queue's depth and the providers'
// health (GET /v1/stats).

import { request, query } from './api.js';
import { h, replace, badge, problem, empty, select } from './dom.js';
import { lineChart } from './charts.js';

const periods = [['hour', 'Last hour', 3600e3], ['day', 'Last day', 86400e3], ['week', 'Last week', 7 * 86400e3]];
const refreshEvery = 5000;
// The queue chart keeps the samples taken since the page opened, up to this many.
const maxQueueSamples = 180;
const funnelSteps = [['sent', 'Sent'], ['delivered', 'Delivered'], ['opened', 'Opened'], ['clicked', 'Clicked']];
const statusOrder = ['accepted', 'scheduled', 'queued', 'sending', 'sent', 'delivered', 'opened', 'clicked',
  'failed', 'suppressed', 'canceled', 'dead'];

// The period survives a visit to another page while the tab lives.
const state = { period: 'day' };

function isoSeconds(d) {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function percent(rate) {
  return `${(rate * 100).toFixed(rate > 0 && rate < 0.1 ? 1 : 0)}%`;
}

export function overviewPage(main, params, ctx) {
  let alive = true;
  let timer = null;
  let busy = false;
  const queueSamples = [];
  if (params.get('period') && periods.some(([p]) => p === params.get('period'))) state.period = params.get('period');

  const periodSelect = select('period', periods.map(([p, label]) => [p, label]), state.period);
  const funnel = h('div', { id: 'funnel', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading\u2026'));
  const throughput = h('div', { id: 'throughput' }, h('p', { class: 'muted' }, 'Loading\u2026'));
  const queue = h('div', { id: 'queue' });
  const providers = h('div', { id: 'providers' });
  const live = h('span', { class: 'live', id: 'overview-live' }, h('span', { class: 'pulse' }), 'Live');

  periodSelect.addEventListener('change', () => {
    state.period = periodSelect.value;
    ctx.navigate(`#/overview${query({ period: state.period })}`);
  });

  replace(main,
    h('section', { class: 'panel' },
      h('div', { class: 'title-row' }, h('h1', {}, 'Overview'),
        h('label', { class: 'field inline-field' }, h('span', { class: 'label' }, 'Period'), periodSelect)),
      h('p', { class: 'muted' }, 'Deliveries accepted in the period: how far each got, and where they stand now.'),
      funnel),
    h('section', { class: 'panel' },
      h('div', { class: 'title-row' }, h('h2', {}, 'Throughput, last 15 minutes'), live),
      h('p', { class: 'muted small' }, 'This app\u2019s deliveries per 10 seconds, from the notification log; refreshed every 5 seconds.'),
      throughput),
    h('div', { class: 'columns' },
      h('section', { class: 'panel' },
        h('h2', {}, 'Provider health'),
        h('p', { class: 'muted small' }, 'This app\u2019s providers by channel, in failover order, with their answers of the last 15 minutes.'),
        providers),
      h('section', { class: 'panel' },
        h('h2', {}, 'Queue depth'),
        h('p', { class: 'muted small' }, 'The deployment\u2019s queue, shared by every app, sampled since this page opened.'),
        queue)));

  loadFunnel(funnel, state.period, () => alive);

  async function refresh() {
    if (busy || !alive) return;
    busy = true;
    try {
      const stats = await request('GET', '/v1/stats?window=15m&interval=10s');
      if (!alive) return;
      renderThroughput(throughput, stats);
      renderProviders(providers, stats.providers || []);
      queueSamples.push({ at: new Date(), queue: stats.queue });
      if (queueSamples.length > maxQueueSamples) queueSamples.shift();
      renderQueue(queue, queueSamples);
      replace(live, h('span', { class: 'pulse' }), `Updated ${new Date().toLocaleTimeString()}`);
    } catch (err) {
      if (!alive) return;
      replace(throughput, problem(err, 'Could not load the activity'));
      replace(live, 'Paused');
      // A refusal will not change by itself: stop asking.
      if (err.status === 401 || err.status === 403) {
        clearInterval(timer);
        replace(providers);
        replace(queue);
      }
    } finally {
      busy = false;
    }
  }
  refresh();
  timer = setInterval(refresh, refreshEvery);
  return () => {
    alive = false;
    clearInterval(timer);
  };
}

async function loadFunnel(out, period, isAlive) {
  const span = periods.find(([p]) => p === period)[2];
  const to = new Date();
  const from = new Date(to.getTime() - span);
  try {
    const a = await request('GET', `/v1/analytics${query({ from: isoSeconds(from), to: isoSeconds(to) })}`);
    if (isAlive()) renderFunnel(out, a);
  } catch (err) {
    if (isAlive()) replace(out, problem(err, 'Could not load the counts'));
  }
}

function renderFunnel(out, a) {
  if (!a.total) {
    replace(out, empty('Nothing was accepted in this period.', 'Send a notification and it shows here.'));
    return;
  }
  const f = a.funnel;
  const top = Math.max(f.sent, 1);
  const rates = { sent: 1, delivered: f.delivered_rate, opened: f.opened_rate, clicked: f.clicked_rate };
  const steps = h('ol', { class: 'funnel' }, funnelSteps.map(([key, label]) => {
    const bar = h('span', { class: `bar ${key}` });
    // Width through the CSSOM, not a style attribute: the policy allows it either way, the markup stays clean.
    bar.style.width = `${Math.max((100 * f[key]) / top, f[key] ? 2 : 0)}%`;
    return h('li', { 'data-step': key, 'data-count': f[key] },
      h('span', { class: 'step' }, label),
      h('span', { class: 'track' }, bar),
      h('strong', { class: 'count' }, String(f[key])),
      h('span', { class: 'muted rate' }, key === 'sent' ? 'of sent' : percent(rates[key])));
  }));
  const byStatus = Object.entries(a.by_status || {})
    .sort(([x], [y]) => statusOrder.indexOf(x) - statusOrder.indexOf(y));
  replace(out,
    h('p', { class: 'total' }, h('strong', { id: 'analytics-total' }, String(a.total)), ` deliveries accepted`),
    steps,
    h('h3', {}, 'Where they stand now'),
    h('ul', { class: 'status-counts', id: 'status-counts' }, byStatus.map(([status, n]) =>
      h('li', { 'data-status': status }, badge(status), h('strong', {}, String(n))))));
}

function renderThroughput(out, stats) {
  const times = stats.throughput.map((b) => new Date(b.start));
  const values = (f) => stats.throughput.map(f);
  replace(out, lineChart(times, [
    { name: 'accepted', label: 'Accepted', values: values((b) => b.accepted) },
    { name: 'sent', label: 'Sent', values: values((b) => b.sent) },
    { name: 'failed', label: 'Failed or dead', values: values((b) => b.failed + b.dead) },
    { name: 'retried', label: 'Retried', values: values((b) => b.retried) },
  ], { id: 'throughput-chart', title: 'Deliveries per 10 seconds' }));
}

function renderProviders(out, list) {
  if (!list.length) {
    replace(out, empty('No providers configured.', 'PUT /v1/providers/{channel} sets a channel\u2019s list.'));
    return;
  }
  const circuit = (c) => {
    const tone = { closed: 'good', open: 'bad', unknown: 'muted' }[c] || 'muted';
    const text = { closed: 'closed', open: 'open', unknown: 'not sending here' }[c] || c;
    return h('span', { class: `badge ${tone}`, 'data-circuit': c }, text);
  };
  replace(out, h('div', { class: 'scroll-x' }, h('table', { class: 'list compact', id: 'providers-table' },
    h('thead', {}, h('tr', {}, ['Channel', 'Provider', 'Circuit', 'Answers', 'Errors'].map((t) => h('th', {}, t)))),
    h('tbody', {}, list.map((p) => h('tr', { 'data-kind': p.kind, 'data-channel': p.channel },
      h('td', {}, h('span', { class: 'channel' }, p.channel)),
      h('td', {}, h('span', { class: 'mono' }, p.kind), p.position > 0 ? h('span', { class: 'muted small' }, ` #${p.position + 1}`) : null),
      h('td', {}, circuit(p.circuit)),
      h('td', {}, String(p.attempts)),
      h('td', { class: p.error_share > 0.2 ? 'high-share' : null }, p.attempts ? `${p.errors} (${percent(p.error_share)})` : '—')))))));
}

function renderQueue(out, samples) {
  const last = samples[samples.length - 1].queue;
  const parts = [];
  if (!last.readable) parts.push(h('p', { class: 'warning' }, last.error || 'The queue did not answer.'));
  parts.push(lineChart(samples.map((s) => s.at), [
    { name: 'pending', label: 'Pending', values: samples.map((s) => s.queue.pending) },
    { name: 'ack-pending', label: 'Being worked on', values: samples.map((s) => s.queue.ack_pending) },
  ], { id: 'queue-chart', title: 'Queue depth', legend: 'last', size: { width: 400, height: 160 } }));
  const busy = last.consumers.filter((c) => c.pending || c.ack_pending || c.oldest_pending_age_seconds);
  parts.push(busy.length
    ? h('table', { class: 'list compact', id: 'consumers-table' },
      h('thead', {}, h('tr', {}, ['Consumer', 'Pending', 'Working', 'Oldest'].map((t) => h('th', {}, t)))),
      h('tbody', {}, busy.map((c) => h('tr', {},
        h('td', { class: 'mono' }, `${c.stream} / ${c.consumer}`),
        h('td', {}, String(c.pending)), h('td', {}, String(c.ack_pending)),
        h('td', {}, c.oldest_pending_age_seconds ? `${c.oldest_pending_age_seconds.toFixed(1)} s` : '—')))))
    : h('p', { class: 'muted small', id: 'queue-idle' }, `All ${last.consumers.length} consumers are idle: nothing waits.`));
  replace(out, parts);
}
