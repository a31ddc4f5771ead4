// Web pages from other origins try to use the local gateway a developer runs
// on 127.0.0.1, the way any site open in the same browser could: a WebSocket
// to it (cross-site WebSocket hijacking), `no-cors` POSTs to its @connections
// API (which the browser sends without a preflight), and a DNS-rebinding page
// whose host name resolves to 127.0.0.1. Pages the gateway must accept are
// tried too, so that "nothing opened" cannot come from a broken browser setup.
//
// The script judges nothing: it prints one line `cross-origin: {json}` of what
// happened and tests/browser.rs decides (it also watches the victim's socket).
// Usage: node cross_origin.mjs GATEWAY_PORT ATTACKER_PORT VICTIM_CONNECTION_ID
import { chromium } from 'playwright-core';

const [gatewayPort, attackerPort, victim] = process.argv.slice(2);
const gateway = `127.0.0.1:${gatewayPort}`;
// After rebinding, the attacker's name points at the gateway: same port, so the
// page is same-origin with everything it asks of "its own" server.
const rebound = `rebind.test:${gatewayPort}`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         // Both names are the attacker's (their DNS): rebind.test has already
         // been rebound to 127.0.0.1; friend.test hosts the allowlisted origin.
         '--host-resolver-rules=MAP rebind.test 127.0.0.1, MAP friend.test 127.0.0.1',
         // Chromium's Local Network Access checks would block the rebinding
         // page (served in the attacker's place, so "public") from reaching
         // 127.0.0.1. Other browsers have no such checks and a user may grant
         // Chromium's prompt: the gateway must refuse by itself.
         '--disable-features=LocalNetworkAccessChecks,LocalNetworkAccessChecksWebSockets'],
});
const timeout = 10_000;

// Runs in a page: opens a WebSocket and, if it opens, posts `text` to `channel`
// as the chat page would (what an attacker would do with it), then waits for
// the gateway's answer. Every URL carries a valid `token` (a name), so only
// the gateway's Origin and Host checks can refuse the handshake.
// Self-contained: Playwright sends its source to the page.
const socket = ({ url, channel, text }) => new Promise((resolve) => {
  const result = { url, opened: false };
  const ws = new WebSocket(url);
  const timer = setTimeout(() => { result.timedOut = true; ws.close(); resolve(result); }, 5000);
  ws.onopen = () => {
    result.opened = true;
    ws.send(JSON.stringify({ action: 'send', channel, text, ref: 1 }));
  };
  ws.onmessage = (e) => { result.received = e.data; ws.close(); };
  ws.onerror = () => { result.error = true; };
  ws.onclose = (e) => { result.closeCode = e.code; clearTimeout(timer); resolve(result); };
});

// Runs in a page: one fetch; what the page can see of its answer (an opaque
// `no-cors` answer shows status 0; the victim's socket tells the effect).
const request = async ({ url, init }) => {
  const result = { url, method: init.method || 'GET', mode: init.mode || 'cors' };
  try {
    const response = await fetch(url, init);
    Object.assign(result, { type: response.type, status: response.status });
    if (response.type !== 'opaque') result.body = (await response.text()).slice(0, 300);
  } catch (e) {
    result.error = String(e);
  }
  return result;
};

const report = { console: [] };
// Each step records its outcome or its error; one failing step does not hide
// the others.
const attempt = async (name, step) => {
  try {
    report[name] = await step();
  } catch (e) {
    report[name] = { error: String(e).split('\n')[0] };
  }
};
const newPage = async () => {
  const page = await browser.newPage();
  // Chromium logs why a WebSocket failed ("Unexpected response code: 403"),
  // which the page itself cannot see. (Not the 404 of every page's favicon.)
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().includes('status of 404'))
      report.console.push(`${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => report.console.push(`${page.url()}: page error: ${e}`));
  return page;
};
// The chat page's own socket opens (positive control for the page's origin)
// once a name is given.
const chatPage = async (url) => {
  const page = await newPage();
  try {
    const response = await page.goto(url);
    const status = response && response.status();
    await page.fill('#name', 'owner', { timeout }).catch(() => {});
    await page.click('#connect', { timeout }).catch(() => {});
    await page.waitForSelector('#status[data-state="open"]', { timeout }).catch(() => {});
    const state = await page.getAttribute('#status', 'data-state').catch(() => null);
    const text = await page.textContent('#status').catch(() => null);
    return { url, status, state, text };
  } finally {
    await page.close(); // its $disconnect; the victim is unaffected
  }
};

try {
  await attempt('ownPage', () => chatPage(`http://${gateway}/`));
  await attempt('ownPageLocalhost', () => chatPage(`http://localhost:${gatewayPort}/`));

  // An origin the developer listed in LAWCKET_LOCAL_ORIGINS may connect (its own
  // channel, so nothing it says reaches the victim).
  await attempt('allowedOrigin', async () => {
    const page = await newPage();
    await page.goto(`http://friend.test:${attackerPort}/`);
    return page.evaluate(socket, {
      url: `ws://${gateway}/?channel=%23friends&token=friend`, channel: '#friends', text: 'hello from an allowed origin',
    });
  });

  // Another origin (same host, another port), e.g. any site the developer visits.
  await attempt('crossOrigin', async () => {
    const page = await newPage();
    await page.goto(`http://127.0.0.1:${attackerPort}/`);
    const post = (path, text) =>
      page.evaluate(request, { url: `http://${gateway}${path}`, init: { method: 'POST', mode: 'no-cors', body: text } });
    return {
      origin: await page.evaluate(() => location.origin),
      socket: await page.evaluate(socket, {
        url: `ws://${gateway}/?channel=%23general&token=mallory`, channel: '#general', text: 'injected by a cross-origin WebSocket',
      }),
      post: await post(`/@connections/${victim}`, 'injected by a cross-origin POST /@connections'),
      stagePost: await post(`/local/@connections/${victim}`, 'injected by a cross-origin POST /local/@connections'),
      // Needs a CORS preflight the gateway does not answer; the victim must stay.
      delete: await page.evaluate(request, { url: `http://${gateway}/@connections/${victim}`, init: { method: 'DELETE' } }),
    };
  });

  // What the attacker's page reads after rebinding: the gateway must refuse
  // the foreign Host rather than serve its page.
  await attempt('rebindingNavigation', async () => {
    const page = await newPage();
    const url = `http://${rebound}/`;
    // A 4xx with an empty body makes goto throw (ERR_HTTP_RESPONSE_CODE_FAILURE):
    // the answer's status is what counts.
    const answered = page.waitForResponse((r) => r.url() === url, { timeout });
    const loadError = await page.goto(url).then(() => undefined, (e) => String(e).split('\n')[0]);
    const response = await answered;
    const body = await response.text().catch(() => '');
    return { url, status: response.status(), servedChatPage: body.includes('lawcket chat'), loadError };
  });

  // The attacker's page itself, loaded while the name still pointed at the
  // attacker's server (Playwright serves it in that server's place); what it
  // then asks goes to 127.0.0.1. Its Origin is http://rebind.test:PORT, which
  // matches the Host it sends, so only the Host check can stop it.
  await attempt('rebindingPage', async () => {
    const page = await newPage();
    await page.route(`http://${rebound}/rebinding`, (route) => route.fulfill({
      status: 200, contentType: 'text/html', body: '<!doctype html><title>rebinding</title><p>rebinding page',
    }));
    await page.goto(`http://${rebound}/rebinding`);
    return {
      origin: await page.evaluate(() => location.origin),
      socket: await page.evaluate(socket, {
        url: `ws://${rebound}/?channel=%23general&token=mallory`, channel: '#general', text: 'injected by a WebSocket after DNS rebinding',
      }),
      // Same-origin for the page: it could read these answers.
      post: await page.evaluate(request, {
        url: `/@connections/${victim}`, init: { method: 'POST', body: 'injected by a POST after DNS rebinding' },
      }),
      get: await page.evaluate(request, { url: `/@connections/${victim}`, init: {} }),
    };
  });
} finally {
  console.log('cross-origin: ' + JSON.stringify(report));
  await browser.close();
}
