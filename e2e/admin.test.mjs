// Browser test of Herald's admin UI in headless Chromium.
//
// Run by internal/admin's TestAdminUIInChromium, which starts Herald,
// prepares an app with users, an email provider, a delivered notification,
// a dead letter and a template, then runs this script with:
//
//   HERALD_URL          base URL of the running Herald (http://127.0.0.1:PORT)
//   HERALD_API_KEY      an admin key of the prepared app
//   HERALD_SCREENSHOTS  directory for one screenshot per page
//   HERALD_CHROMIUM     the Chromium binary (default /usr/bin/chromium)
//   HERALD_E2E_TEMPLATES=absent  only when this build has no /v1/templates:
//                       the preview step then expects the 404 instead of failing
//
// It exits non-zero, with a screenshot of the page it stopped on, at the
// first step that does not go as it should.

import { chromium } from 'playwright-core';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

const base = required('HERALD_URL').replace(/\/$/, '');
const key = required('HERALD_API_KEY');
const shots = required('HERALD_SCREENSHOTS');
const executablePath = process.env.HERALD_CHROMIUM || '/usr/bin/chromium';
const templatesAbsent = process.env.HERALD_E2E_TEMPLATES === 'absent';
const timeout = 30_000;

function required(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is not set: this script is run by internal/admin's TestAdminUIInChromium`);
    process.exit(2);
  }
  return v;
}

class StepFailure extends Error {}

function fail(message) {
  throw new StepFailure(message);
}

await mkdir(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-GB', timezoneId: 'UTC' });
context.setDefaultTimeout(timeout);
const page = await context.newPage();

// Any script error or Content-Security-Policy violation fails the run: the
// UI must work under its own policy.
const pageProblems = [];
page.on('pageerror', (err) => pageProblems.push(`page error: ${err.message}`));
page.on('console', (msg) => {
  if (msg.type() === 'error' && /Content.Security.Policy|Refused to/i.test(msg.text())) {
    pageProblems.push(`console: ${msg.text()}`);
  }
});
// No key may ever travel in a URL, whatever page asks for what.
const keys = [key];
page.on('request', (req) => {
  for (const k of keys) {
    if (req.url().includes(k)) pageProblems.push(`an API key appeared in a URL: ${req.method()} ${req.url().replace(k, '<key>')}`);
  }
});

let current = 'start';
async function step(name, fn) {
  current = name;
  const started = Date.now();
  await fn();
  if (pageProblems.length) fail(pageProblems.join('\n'));
  console.log(`ok   ${name} (${Date.now() - started} ms)`);
}

async function shot(name) {
  const file = path.join(shots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true, animations: 'disabled' });
  console.log(`     screenshot ${file}`);
}

// api calls Herald directly (not through the page) to set up what the page then shows.
async function api(method, p, body) {
  const res = await fetch(base + p, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) fail(`${method} ${p} answered ${res.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

let exitCode = 0;
let replayedID = '';
try {
  await step('the UI is served with its security headers', async () => {
    const res = await page.goto(`${base}/admin/`);
    if (!res || res.status() !== 200) fail(`GET /admin/ answered ${res && res.status()}`);
    const h = res.headers();
    if (!/script-src 'self'/.test(h['content-security-policy'] || '')) fail(`CSP = ${h['content-security-policy']}`);
    if (h['x-frame-options'] !== 'DENY') fail(`X-Frame-Options = ${h['x-frame-options']}`);
    await page.locator('#api-key').waitFor();
    if (await page.locator('#nav').isVisible()) fail('the navigation shows before sign-in');
  });

  await step('a wrong key is refused with the problem detail', async () => {
    await page.fill('#api-key', 'hk_wrong_0123456789abcdef0123456789abcdef');
    await page.click('#sign-in-form button[type=submit]');
    const err = page.locator('#sign-in-error .problem');
    await err.waitFor();
    const text = await err.innerText();
    if (!/not valid|Authorization/i.test(text)) fail(`the sign-in error says ${JSON.stringify(text)}, want the 401 detail`);
    await shot('signin');
  });

  await step('sign in with the API key', async () => {
    await page.fill('#api-key', key);
    await page.click('#sign-in-form button[type=submit]');
    // The overview is the landing page.
    await page.locator('#funnel').waitFor();
    if (!page.url().endsWith('/admin/') && !page.url().includes('#/overview')) fail(`sign-in landed on ${page.url()}`);
    if (!(await page.locator('#nav').isVisible())) fail('the navigation is hidden after sign-in');
    const stored = await page.evaluate(() => ({ session: Object.values(sessionStorage), local: Object.values(localStorage) }));
    if (!stored.session.includes(key)) fail('the key is not in sessionStorage');
    if (stored.local.length) fail(`localStorage holds ${stored.local.length} items: the key must stay in the session`);
  });

  // A new notification for user 123, sent now, so the page can watch it move.
  const sent = await api('POST', '/v1/notifications', {
    to: [{ user_id: '123' }], channels: ['email'], category: 'password-reset',
    content: { subject: 'Reset your password', body: 'Use this link to reset your password.' },
  });

  await step('search finds user 123\u2019s notification', async () => {
    await page.click('nav a[data-nav="notifications"]');
    await page.fill('#user_id', '123');
    await page.click('#search-form button[type=submit]');
    const row = page.locator(`#notifications-table tr[data-id="${sent.id}"]`);
    await row.waitFor();
    if (!(await page.url()).includes('user_id=123')) fail(`the search is not in the address: ${page.url()}`);
    const rows = await page.locator('#notifications-table tbody tr').count();
    if (rows < 2) fail(`${rows} rows for user 123, want the prepared notification and the new one`);
    await row.locator('.chip').first().waitFor();
    await page.locator('#notifications-table tbody tr .chip [data-status="sent"]').first().waitFor();
  });

  await step('the notification\u2019s timeline reaches sent without a reload', async () => {
    await page.click(`#notifications-table tr[data-id="${sent.id}"] a`);
    await page.locator('#notification-id').waitFor();
    const first = await page.locator('article.delivery').getAttribute('data-status');
    console.log(`     the delivery was ${first} when the page opened`);
    // The page refreshes itself while the delivery is in flight.
    await page.locator('article.delivery[data-status="sent"]').waitFor();
    const steps = await page.locator('article.delivery ol.timeline li').evaluateAll((lis) => lis.map((li) => li.dataset.status));
    for (const want of ['accepted', 'sending', 'sent']) {
      if (!steps.includes(want)) fail(`the timeline shows ${steps.join(' → ')}, without ${want}`);
    }
    await page.locator('#live', { hasText: 'Updated' }).waitFor();
    await shot('notification');
  });

  await step('back to the search results', async () => {
    await page.goBack();
    await page.locator(`#notifications-table tr[data-id="${sent.id}"] [data-status="sent"]`).waitFor();
    await shot('notifications');
  });

  await step('the overview shows the funnel, a live throughput chart, provider health and the queue', async () => {
    await page.click('nav a[data-nav="overview"]');
    const sentStep = page.locator('#funnel ol.funnel li[data-step="sent"]');
    await sentStep.waitFor();
    // The prepared notification and the page's own were sent; the two dead letters were not.
    const sentCount = Number(await sentStep.getAttribute('data-count'));
    if (sentCount < 2) fail(`the funnel shows ${sentCount} sent, want the prepared notification and the page's (2)`);
    const total = Number(await page.locator('#analytics-total').innerText());
    if (total < 4) fail(`the period counts ${total} deliveries, want at least the 4 of this test`);
    await page.locator('#status-counts li[data-status="dead"]').waitFor();
    // The chart draws the sends of the last minutes: some interval is not zero.
    const sentLine = page.locator('#throughput-chart polyline[data-series="sent"]');
    await sentLine.waitFor();
    const values = (await sentLine.getAttribute('data-values')).split(',').map(Number);
    if (values.length !== 90) fail(`the throughput chart has ${values.length} points, want 90 intervals of 10 s`);
    if (!values.some((v) => v > 0)) fail(`the throughput chart shows no send: ${values.join(',')}`);
    const smtp = page.locator('#providers-table tr[data-kind="smtp"][data-channel="email"]');
    await smtp.waitFor();
    const circuit = await smtp.locator('[data-circuit]').getAttribute('data-circuit');
    if (!['closed', 'open'].includes(circuit)) fail(`the SMTP provider's circuit shows ${circuit}, want closed or open`);
    const smtpText = await smtp.innerText();
    if (!/%/.test(smtpText)) fail(`the SMTP provider row shows ${JSON.stringify(smtpText)}, want its error share`);
    await page.locator('#queue-chart').waitFor();
    // It refreshes by itself.
    await page.locator('#overview-live', { hasText: 'Updated' }).waitFor();
    const first = await page.locator('#overview-live').innerText();
    await page.waitForFunction((before) => document.querySelector('#overview-live').textContent !== before, first, { timeout: 15_000 });
    if ((await page.locator('#queue-chart polyline[data-series="pending"]').getAttribute('data-values')).split(',').length < 2) {
      fail('the queue chart did not gain a sample on refresh');
    }
    await shot('overview');
    // Another period reloads the counts and is kept in the address.
    await page.selectOption('#period', 'hour');
    await page.waitForURL(/period=hour/);
    await page.locator('#funnel ol.funnel li[data-step="sent"]').waitFor();
  });

  await step('a search that matches nothing says so', async () => {
    await page.click('nav a[data-nav="notifications"]');
    await page.fill('#user_id', '123');
    await page.selectOption('#status', 'dead');
    await page.click('#search-form button[type=submit]');
    const none = page.locator('#results .empty');
    await none.waitFor();
    if (!/No notifications found/.test(await none.innerText())) fail(`the empty state says ${await none.innerText()}`);
    if (!page.url().includes('status=dead') || !page.url().includes('user_id=123')) fail(`the filters are not in the address: ${page.url()}`);
  });

  await step('a dead letter is replayed and the replay accepted', async () => {
    await page.click('nav a[data-nav="dead-letters"]');
    const card = page.locator('article.dead-letter').first();
    await card.waitFor();
    const text = await card.innerText();
    if (!/retries_exhausted/.test(text) || !/451/.test(text)) fail(`the dead letter shows ${JSON.stringify(text)}, want its reason and the 451 of each attempt`);
    const id = await card.getAttribute('data-delivery');
    replayedID = id;
    await card.locator('button.replay').click();
    const outcome = card.locator('.outcome .success');
    await outcome.waitFor();
    if (!/Replay accepted/.test(await outcome.innerText())) fail(`the replay says ${await outcome.innerText()}`);
    if (!(await card.locator('button.replay').isDisabled())) fail('the replay button is still enabled after the replay');
    console.log(`     replayed delivery ${id}`);
    await shot('dead-letters');
  });

  await step('the template editor saves a new version, and a broken one shows its 422 line', async () => {
    await page.click('nav a[data-nav="templates"]');
    if (templatesAbsent) {
      await page.locator('#templates-list .problem').waitFor();
      console.log('     HERALD_E2E_TEMPLATES=absent: no templates to edit');
      return;
    }
    await page.click('#templates-table tr[data-name="password-reset"] a.edit');
    await page.locator('#editor-version', { hasText: 'Version 1' }).waitFor();
    const subject = page.locator('#edit-email-subject');
    if (!(await subject.inputValue()).includes('{{.name}}')) fail(`the editor opened with subject ${await subject.inputValue()}`);
    const variants = await page.locator('#editor-variant option').evaluateAll((os) => os.map((o) => o.value));
    if (!variants.includes('de')) fail(`the variants are ${JSON.stringify(variants)}, want the de locale`);
    await subject.fill('Welcome back, {{.name}}: a new password');
    await page.click('#editor-form button[type=submit]');
    const saved = page.locator('#editor-saved');
    await saved.waitFor();
    if (!/version 2/.test(await saved.innerText())) fail(`the save says ${await saved.innerText()}, want version 2`);
    const t = await api('GET', '/v1/templates/password-reset');
    if (t.version !== 2 || t.email.subject !== 'Welcome back, {{.name}}: a new password') {
      fail(`after the save the template is version ${t.version} with subject ${JSON.stringify(t.email && t.email.subject)}`);
    }
    if (!t.locales || !t.locales.de || !/Hallo/.test(t.locales.de.email.subject)) fail('the save lost the de locale');
    if (!t.email.html.includes('Reset password') || !t.sms || !t.push) fail('the save lost a part the editor did not change');

    // The saved version previews with the page's data.
    await page.fill('#editor-data', JSON.stringify({ name: 'Ada', link: 'https://example.com/reset/abc' }));
    await page.click('#editor-preview-form button[type=submit]');
    const previewSubject = page.locator('#email-subject');
    await previewSubject.waitFor();
    if ((await previewSubject.innerText()) !== 'Welcome back, Ada: a new password') fail(`the preview subject is ${await previewSubject.innerText()}`);
    await page.locator('#email-html').scrollIntoViewIfNeeded();
    await page.frameLocator('#email-html').locator('body', { hasText: 'Ada' }).waitFor();

    // A part that does not parse: Herald's 422 names the field and the line, and nothing is saved.
    const html = page.locator('#edit-email-html');
    await html.fill('<p>Hello {{.name}},</p>\n<p>your link:</p>\n<p>{{.link</p>');
    await page.click('#editor-form button[type=submit]');
    const refused = page.locator('#editor-outcome .problem');
    await refused.waitFor();
    const text = await refused.innerText();
    if (!/422/.test(text) || !/email\.html/.test(text) || !/line 3/.test(text)) {
      fail(`the broken save shows ${JSON.stringify(text)}, want the 422 naming email.html at line 3`);
    }
    if ((await html.getAttribute('aria-invalid')) !== 'true') fail('the broken field is not marked invalid');
    if (!/line 3/.test(await page.locator('#edit-email-html-error').innerText())) fail('the broken field does not say its line');
    if ((await api('GET', '/v1/templates/password-reset')).version !== 2) fail('the broken template was saved');
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot('template-editor');
  });

  await step('a template preview shows every part, the email HTML sandboxed', async () => {
    await page.click('nav a[data-nav="templates"]');
    await page.fill('#template-name', 'password-reset');
    await page.fill('#template-locale', 'de');
    await page.fill('#template-data', JSON.stringify({ name: 'Ada', link: 'https://example.com/reset/abc' }, null, 2));
    await page.click('#preview-form button[type=submit]');
    if (templatesAbsent) {
      const p = page.locator('#preview .problem');
      await p.waitFor();
      const text = await p.innerText();
      if (!/404/.test(text)) fail(`without templates the preview shows ${JSON.stringify(text)}, want the 404 problem`);
      console.log('     HERALD_E2E_TEMPLATES=absent: this build has no /v1/templates; the 404 problem is shown');
      await shot('template-preview');
      return;
    }
    const problemBox = page.locator('#preview .problem');
    // First without the data the template reads: Herald's 422 names the key.
    await page.fill('#template-data', '{}');
    await page.click('#preview-form button[type=submit]');
    await problemBox.waitFor();
    const missing = await problemBox.innerText();
    if (!/422/.test(missing) || !/data\.name/.test(missing)) {
      fail(`a preview without data shows ${JSON.stringify(missing)}, want the 422 naming data.name\n` +
        '(POST /v1/templates/{name}/preview is part of API.md; set HERALD_E2E_TEMPLATES=absent only on a build without templates)');
    }
    await page.fill('#template-data', JSON.stringify({ name: 'Ada', link: 'https://example.com/reset/abc' }, null, 2));
    await page.click('#preview-form button[type=submit]');
    const subject = page.locator('#email-subject');
    await Promise.race([subject.waitFor(), problemBox.waitFor()]);
    if (await problemBox.count()) {
      fail(`the preview failed: ${await problemBox.innerText()}\n` +
        '(POST /v1/templates/{name}/preview is part of API.md; set HERALD_E2E_TEMPLATES=absent only on a build without templates)');
    }
    const subjectText = await subject.innerText();
    if (!subjectText.includes('Ada')) fail(`the subject is ${JSON.stringify(subjectText)}, want the data rendered in`);
    const frame = page.locator('#email-html');
    if ((await frame.getAttribute('sandbox')) !== '') fail('the email HTML frame is not sandboxed without permissions');
    const inner = page.frameLocator('#email-html');
    await inner.locator('body').waitFor();
    const body = await inner.locator('body').innerText();
    if (!body.includes('Ada')) fail(`the email HTML frame shows ${JSON.stringify(body)}`);
    // The template carries a script that marks the body if it ever runs.
    if (await inner.locator('body[data-script-ran]').count()) fail('a script in the email HTML ran');
    if ((await page.locator('#part-sms').count()) !== 1 || (await page.locator('#part-push').count()) !== 1) {
      fail('the SMS and push parts are missing from the preview');
    }
    await shot('template-preview');
  });

  await step('a send key may look, and its replay is refused with the 403 detail', async () => {
    const viewer = await api('POST', '/v1/keys', { name: 'viewer', scope: 'send' });
    keys.push(viewer.key);
    await page.click('#sign-out');
    await page.fill('#api-key', viewer.key);
    await page.click('#sign-in-form button[type=submit]');
    // Signing in again keeps the page one was on.
    await page.locator('#preview-form').waitFor();
    await page.click('nav a[data-nav="dead-letters"]');
    const card = page.locator(`article.dead-letter:not([data-delivery="${replayedID}"])`).first();
    await card.waitFor();
    await card.locator('button.replay').click();
    const refused = card.locator('.outcome .problem');
    await refused.waitFor();
    const text = await refused.innerText();
    if (!/403/.test(text) || !/scope/.test(text)) fail(`the refused replay shows ${JSON.stringify(text)}, want the 403 detail`);
    if (await card.locator('button.replay').isDisabled()) fail('the replay button stays disabled after a refusal');
  });

  await step('sign out forgets the key', async () => {
    await page.click('#sign-out');
    await page.locator('#api-key').waitFor();
    if (await page.locator('#nav').isVisible()) fail('the navigation still shows after signing out');
    const stored = await page.evaluate(() => Object.values(sessionStorage));
    if (keys.some((k) => stored.includes(k))) fail('a key is still in sessionStorage after signing out');
  });
} catch (err) {
  exitCode = 1;
  console.error(`FAIL ${current}: ${err instanceof StepFailure ? err.message : err.stack || err}`);
  try {
    await page.screenshot({ path: path.join(shots, 'failure.png'), fullPage: true });
    console.error(`     screenshot of the failure: ${path.join(shots, 'failure.png')}`);
  } catch {
    // The browser is gone; the message above is all there is.
  }
} finally {
  await browser.close();
}
process.exit(exitCode);
