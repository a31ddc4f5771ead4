// What chat.mjs and reconnect.mjs share: Chromium, opening the chat page under
// a name, reading its lines, and waiting for a condition with a failure that
// shows every page involved (its status and its lines), so a timeout says what
// the pages looked like instead of only "timed out".
import { chromium } from 'playwright-core';

// Generous: a debug build of the gateway and Chromium share 2 slow cores.
export const timeout = 30_000;

export const launch = () => chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Progress on stdout: when a step fails, the last one printed is where.
const started = Date.now();
export const step = (what) => console.log(`step (${((Date.now() - started) / 1000).toFixed(1)} s): ${what}`);

// The page's message list: classes, the sender label (null for system and
// error lines) and the text after "label: ".
export const lines = (page) => page.$$eval('#messages li', (items) => items.map((li) => {
  const label = li.querySelector('.from');
  const from = label ? label.textContent : null;
  return {
    classes: li.className.split(/\s+/).filter(Boolean),
    from,
    text: from === null ? li.textContent : li.textContent.slice(from.length + 2),
    elements: li.querySelectorAll('*').length - (label ? 1 : 0), // markup inside: must be 0
  };
}));

// Line predicates.
export const message = (from, text) => (l) => l.from === from && l.text === text;
export const system = (text) => (l) => l.classes.includes('system') && l.text === text;
export const error = (part) => (l) => l.classes.includes('error') && l.text.includes(part);
export const body = (text) => (l) => l.from !== null && l.text === text;

export const status = async (page) => ({
  state: await page.getAttribute('#status', 'data-state'),
  text: await page.textContent('#status'),
});

// One page as text, for failure messages.
export async function describe(page) {
  try {
    const s = await status(page);
    const shown = (await lines(page)).map((l) =>
      `    [${l.classes.join(' ')}] ${l.from === null ? '' : `${l.from}: `}${l.text.length > 120 ? `${l.text.slice(0, 120)}… (${l.text.length} chars)` : l.text}`);
    return `  ${page.who} at ${page.url()}: status ${s.state} "${s.text}"\n${shown.join('\n')}`;
  } catch (e) {
    return `  ${page.who}: cannot read the page (${String(e).split('\n')[0]})`;
  }
}

export class Failure extends Error {}

export async function fail(what, pages) {
  const shown = await Promise.all(pages.map(describe));
  throw new Failure(`${what}\n${shown.join('\n')}`);
}

// Polls `check` until it answers something truthy; fails after `ms` naming
// `what` and showing `pages`.
export async function until(what, pages, check, ms = timeout) {
  const deadline = Date.now() + ms;
  for (;;) {
    const result = await check();
    if (result) return result;
    if (Date.now() > deadline) await fail(`${what}: not within ${ms / 1000} s`, pages);
    await sleep(150);
  }
}

export const count = async (page, predicate) => (await lines(page)).filter(predicate).length;

// Waits until `page` shows a line matching `predicate`; answers it.
export const sees = (page, predicate, what, ms) =>
  until(`${page.who} should show ${what}`, [page], async () => (await lines(page)).find(predicate), ms);

// Fails unless `page` shows exactly `n` lines matching `predicate` now.
export async function exactly(page, n, predicate, what, pages = [page]) {
  const found = await count(page, predicate);
  if (found !== n) await fail(`${page.who} shows ${what} ${found} times, expected ${n}`, pages);
}

export async function say(page, text) {
  await page.fill('#text', text);
  await page.click('#send');
}

// Waits until `page` is connected to `channel` and has joined it `joins` times.
export const connected = (page, channel, joins = 1, ms) =>
  until(`${page.who} should be connected to ${channel} (join ${joins})`, [page], async () => {
    const s = await status(page);
    return s.state === 'open'
      && s.text === `connected to ${channel} as ${page.who}`
      && await count(page, system(`you joined ${channel}`)) >= joins;
  }, ms);

// A new page in its own browser context (its own localStorage, as another
// device), named `name` for failure messages; page errors are collected.
export function opener(browser, url, pageErrors) {
  const blank = async (name, fragment = '', setup) => {
    const page = await browser.newPage();
    page.who = name;
    page.on('pageerror', (e) => pageErrors.push(`${name}: ${e}`));
    if (setup) await setup(page);
    await page.goto(url + fragment);
    return page;
  };
  // Opens the page at `fragment` and connects as `name` through the form.
  const open = async (name, fragment, channel, setup) => {
    const page = await blank(name, fragment, setup);
    await page.fill('#name', name);
    await page.click('#connect');
    await connected(page, channel);
    return page;
  };
  return { blank, open };
}
