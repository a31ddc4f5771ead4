// Two (then three) pages of the chat example in headless Chromium: a message
// typed in one page appears in the other page of the same channel and not in a
// page of another channel; joining a channel by message works too.
// Usage: node chat.mjs http://127.0.0.1:PORT/ [screenshot.png]
import { chromium } from 'playwright-core';

const [url, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const timeout = 10_000;
try {
  const open = async (query) => {
    const page = await browser.newPage();
    page.on('pageerror', (e) => { throw e; });
    await page.goto(url + query);
    await page.waitForSelector('#status[data-state="open"]', { timeout });
    return page;
  };
  const say = async (page, text) => {
    await page.fill('#text', text);
    await page.click('#send');
  };
  const sees = (page, text) =>
    page.waitForSelector(`#messages li:has-text("${text}")`, { timeout });
  const count = (page, text) => page.locator(`#messages li:has-text("${text}")`).count();

  const alice = await open('');
  const bob = await open('');
  const carol = await open('?channel=%23random');

  await say(alice, 'hello from alice');
  await sees(bob, 'hello from alice');
  await sees(alice, 'hello from alice');
  await say(carol, 'carol in random');
  await sees(carol, 'carol in random');
  if (await count(carol, 'hello from alice') !== 0) throw new Error('#random saw a #general message');
  if (await count(bob, 'carol in random') !== 0) throw new Error('#general saw a #random message');

  // Carol joins #general by message and is then heard there.
  await carol.fill('#channel', '#general');
  await carol.click('#join');
  await sees(carol, 'you joined #general');
  await say(carol, 'carol joined');
  await sees(alice, 'carol joined');
  await sees(bob, 'carol joined');

  if (screenshot) await bob.screenshot({ path: screenshot });
  console.log('browser chat: ok');
} finally {
  await browser.close();
}
