// Two chat pages stay open while tests/browser.rs restarts the chat example on
// the same port: they must notice, wait (backoff), come back by themselves,
// re-join, and deliver a message typed during the outage once.
//
// Protocol with the Rust test, one word per line: this script prints `restart`
// and waits for `stopped` on stdin (the server is down), then prints `start`
// and waits for `started` (the server is up, and the test's own observer is in
// #general, so it sees what alice sends once she is back). Other stdout lines
// are progress. It ends with `reconnect: ok`; anything else is a failure.
// Usage: node reconnect.mjs http://127.0.0.1:PORT/
import readline from 'node:readline';
import {
  launch, opener, step, sleep, lines, status, say, sees, exactly, count, until, fail, connected,
  message, body,
} from './pages.mjs';

const [url] = process.argv.slice(2);
const OUTAGE_TEXT = 'typed during the outage';

// Lines from the Rust test.
const input = [];
let wake = () => {};
let stdinClosed = false;
readline.createInterface({ input: process.stdin })
  .on('line', (line) => { input.push(line.trim()); wake(); })
  .on('close', () => { stdinClosed = true; wake(); });
async function expect(word, ms) {
  const deadline = Date.now() + ms;
  while (!input.length) {
    if (stdinClosed) throw new Error(`stdin closed while waiting for "${word}"`);
    if (Date.now() > deadline) throw new Error(`no "${word}" on stdin within ${ms / 1000} s`);
    await new Promise((resolve) => { wake = resolve; setTimeout(resolve, 200); });
  }
  const line = input.shift();
  if (line !== word) throw new Error(`expected "${word}" on stdin, got "${line}"`);
}

const browser = await launch();
const pageErrors = [];
const { open } = opener(browser, url, pageErrors);

try {
  step('alice and bob in #general');
  // When each page opens a WebSocket, refused ones included: the backoff.
  const watch = (page) => {
    page.attempts = [];
    page.on('websocket', () => page.attempts.push(Date.now()));
  };
  const alice = await open('alice', '#general', '#general', watch);
  const bob = await open('bob', '#general', '#general', watch);
  const both = [alice, bob];
  await say(alice, 'before the restart');
  await sees(bob, message('alice', 'before the restart'), 'alice\'s message before the restart');

  step('the server goes away');
  console.log('restart');
  await expect('stopped', 60_000);
  for (const page of both) {
    await sees(page, (l) => l.classes.includes('error') && l.text.startsWith('the connection was lost (1006)'),
      'that the connection was lost (1006)');
    // Backing off: "reconnecting in N s…", with data-state waiting.
    await until(`${page.who} should be waiting to reconnect`, [page], async () => {
      const s = await status(page);
      return s.state === 'waiting' && /^reconnecting in \d+ s…$/.test(s.text);
    });
  }

  step('alice types while the server is down: kept, shown pending');
  await say(alice, OUTAGE_TEXT);
  const pending = await sees(alice, body(OUTAGE_TEXT), 'the message typed during the outage');
  if (!pending.classes.includes('pending') || !pending.classes.includes('own'))
    await fail(`the message typed during the outage should be own and pending: ${JSON.stringify(pending)}`, both);
  // Down until each page has tried to reconnect 4 times: 0.35-0.5 s after
  // the loss, then 0.7-1 s, 1.4-2 s and 2.8-4 s apart. The third wait is at
  // least 2.8 times the first, a margin that the delay of Playwright's events
  // on a loaded machine does not eat; a page retrying at a fixed pace fails.
  for (const page of both) {
    if (page.attempts.length < 1) await fail(`${page.who}'s first WebSocket was not seen`, both);
    await until(`${page.who} should try to reconnect 4 times`, [page], () => page.attempts.length >= 5);
    const retries = page.attempts.slice(1);
    const gaps = retries.slice(1).map((t, i) => t - retries[i]);
    const grows = gaps.every((gap) => gap >= 250 && gap <= 10_500) && gaps[2] >= 2 * gaps[0];
    step(`${page.who} retried ${gaps.join(' ms, then ')} ms apart`);
    if (!grows) await fail(`${page.who}'s reconnection attempts should back off: gaps ${gaps.join(', ')} ms`, both);
    const s = await status(page);
    if (s.state === 'open') await fail(`${page.who} says open while the server is down`, both);
  }
  await exactly(alice, 1, (l) => l.text === OUTAGE_TEXT && l.classes.includes('pending'), 'the pending message', both);

  step('the server is back: the pages reconnect and re-join by themselves');
  console.log('start');
  await expect('started', 60_000);
  // Backoff reaches 10 s at most; allow for a slow machine.
  for (const page of both) await connected(page, '#general', 2, 60_000);
  await until('alice\'s message typed during the outage should be sent and acked', both, async () =>
    (await lines(alice)).some((l) => l.text === OUTAGE_TEXT && !l.classes.includes('pending')));

  step('messages flow between the pages again');
  await say(bob, 'bob after restart');
  await sees(alice, message('bob', 'bob after restart'), 'bob\'s message after the restart');
  await say(alice, 'alice after restart');
  await sees(bob, message('alice', 'alice after restart'), 'alice\'s message after the restart');
  await sleep(1000); // a second copy would have come by now
  // Once on alice's page (own, settled); at most once on bob's (his page may
  // have re-joined after alice's was sent: the Rust test's observer, in
  // #general before any page came back, counts the delivery itself).
  await exactly(alice, 1, body(OUTAGE_TEXT), 'the message typed during the outage', both);
  const own = (await lines(alice)).find(body(OUTAGE_TEXT));
  if (!own.classes.includes('own') || own.classes.includes('pending'))
    await fail(`the outage message on alice's page should be own and settled: ${JSON.stringify(own)}`, both);
  if (await count(bob, body(OUTAGE_TEXT)) > 1) await fail('bob got the outage message more than once', both);
  for (const page of both) {
    await exactly(page, 1, body('before the restart'), 'the message from before the restart', both);
    await exactly(page, 1, body('alice after restart'), 'alice\'s message after the restart', both);
    await exactly(page, 1, body('bob after restart'), 'bob\'s message after the restart', both);
  }

  if (pageErrors.length) throw new Error(`errors in the pages:\n  ${pageErrors.join('\n  ')}`);
  console.log('reconnect: ok');
} catch (e) {
  console.error(e instanceof Error ? e.stack : e);
  process.exitCode = 1;
} finally {
  await browser.close();
  process.exit(); // stdin stays open (the test holds it): do not wait for it
}
