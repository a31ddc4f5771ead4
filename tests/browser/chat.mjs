// The chat page in headless Chromium against the chat example: names, two
// channels, joining by the page's channel control, a reload, the 32 KiB frame
// limit, and how the page shows the server's errors and a 1009 close.
// Usage: node chat.mjs http://127.0.0.1:PORT/ [screenshot.png]
// Prints `browser chat: ok` at the end; anything else is a failure.
import {
  launch, opener, step, sleep, lines, status, say, sees, exactly, count, until, fail, connected,
  message, system, error, body,
} from './pages.mjs';

const [url, screenshot] = process.argv.slice(2);
const browser = await launch();
const pageErrors = [];
const { open, blank } = opener(browser, url, pageErrors);

try {
  step('a name that breaks the rule is refused on the page, and nothing connects');
  const nameless = await blank('nameless');
  for (const bad of ['no spaces', 'semi;colon', 'ünïcode', '']) {
    await nameless.fill('#name', bad);
    await nameless.click('#connect');
    const shown = await nameless.textContent('#name-error');
    if (!/1 to 24 letters, digits, _ \. or -/.test(shown)) await fail(`"${bad}" gave no clear message: "${shown}"`, [nameless]);
    if ((await status(nameless)).state !== 'closed') await fail(`"${bad}" started a connection`, [nameless]);
  }
  await nameless.close();

  step('alice and bob in #general (no fragment means #general)');
  const alice = await open('alice', '', '#general');
  if (!alice.url().endsWith('/#general')) await fail(`the URL should carry #general: ${alice.url()}`, [alice]);
  const bob = await open('bob', '#general', '#general');
  await sees(alice, system('bob joined #general'), '"bob joined #general"');
  // Their own join is "you joined", from the ack; never "<me> joined".
  await exactly(bob, 0, system('bob joined #general'), 'its own join as "bob joined"');
  await exactly(alice, 0, system('alice joined #general'), 'its own join as "alice joined"');

  step('messages are labelled with the sender; own ones are marked');
  await say(alice, 'hello from alice');
  await sees(bob, message('alice', 'hello from alice'), 'alice\'s message');
  await say(bob, 'hi alice, bob here');
  await sees(alice, message('bob', 'hi alice, bob here'), 'bob\'s message');
  for (const [page, text] of [[alice, 'hello from alice'], [bob, 'hi alice, bob here']]) {
    // Settled: shown once (not again when the broadcast comes back), own, not pending.
    await until(`${page.who}'s own message should settle`, [page], async () =>
      (await lines(page)).some((l) => l.text === text && !l.classes.includes('pending')));
    const own = (await lines(page)).filter(body(text));
    if (own.length !== 1 || !own[0].classes.includes('own') || own[0].from !== 'you')
      await fail(`${page.who}'s own message should be one line, class own, labelled "you": ${JSON.stringify(own)}`, [page]);
  }
  const received = (await lines(bob)).find(body('hello from alice'));
  if (received.classes.includes('own')) await fail('alice\'s message is marked own on bob\'s page', [bob]);

  step('user text is shown as text, never as markup');
  await say(bob, '<b>not bold</b><img src=x onerror="document.title=1">');
  const markup = await sees(alice, message('bob', '<b>not bold</b><img src=x onerror="document.title=1">'), 'the markup as text');
  if (markup.elements !== 0) await fail('bob\'s text became elements on alice\'s page', [alice]);

  step('another tab with the same name is not "own"');
  const alice2 = await open('alice', '#general', '#general');
  alice2.who = 'alice (second tab)';
  // Own joins are skipped by connection, not by name.
  await sees(alice, system('alice joined #general'), 'the second tab joining');
  await say(alice, 'alice, first tab');
  const fromFirstTab = await sees(alice2, message('alice', 'alice, first tab'), 'the first tab\'s message');
  if (fromFirstTab.classes.includes('own')) await fail('a message of another connection with the same name is marked own', [alice2]);
  await alice2.close();

  step('carol in #random does not see #general, nor #general her');
  const carol = await open('carol', '#random', '#random');
  if (!carol.url().endsWith('/#random')) await fail(`the URL should carry #random: ${carol.url()}`, [carol]);
  await say(carol, 'carol in random');
  await sees(carol, body('carol in random'), 'her own message');
  await say(alice, 'general while carol is in random');
  await sees(bob, message('alice', 'general while carol is in random'), 'alice\'s message');
  await sleep(1000); // anything misrouted would have arrived with it
  for (const text of ['hello from alice', 'hi alice, bob here', 'general while carol is in random'])
    await exactly(carol, 0, body(text), `the #general message "${text}"`);
  await exactly(carol, 0, system('bob joined #general'), 'a #general join');
  for (const page of [alice, bob]) await exactly(page, 0, body('carol in random'), 'a #random message');

  step('carol joins #general with the channel control');
  await carol.fill('#channel', '#general');
  await carol.click('#join');
  await connected(carol, '#general');
  if (!carol.url().endsWith('/#general')) await fail(`joining should update the URL: ${carol.url()}`, [carol]);
  await sees(alice, system('carol joined #general'), '"carol joined #general"');
  await sees(bob, system('carol joined #general'), '"carol joined #general"');
  // Her own announcement came after her id was known (this socket's first
  // join told it): skipped there too.
  await exactly(carol, 0, system('carol joined #general'), 'her own join as "carol joined"');
  await say(carol, 'carol now in general');
  await sees(alice, message('carol', 'carol now in general'), 'carol\'s message');
  await sees(bob, message('carol', 'carol now in general'), 'carol\'s message');

  step('a reload keeps the channel (URL fragment) and the name (localStorage)');
  await carol.reload();
  if (!carol.url().endsWith('/#general')) await fail(`the reload lost the channel: ${carol.url()}`, [carol]);
  await connected(carol, '#general'); // no name typed: remembered
  if (await carol.inputValue('#channel') !== '#general') await fail('the channel input does not say #general', [carol]);
  await until('alice should see carol join again', [alice], async () => await count(alice, system('carol joined #general')) === 2);
  await exactly(carol, 0, system('carol joined #general'), 'her own join as "carol joined"');
  await say(bob, 'welcome back carol');
  await sees(carol, message('bob', 'welcome back carol'), 'bob\'s message after the reload');
  await say(carol, 'carol after reload');
  await sees(alice, message('carol', 'carol after reload'), 'carol\'s message after the reload');
  await exactly(carol, 0, body('carol in random'), 'a #random message after the reload');
  // What the page looks like, before the 32 KiB messages fill it.
  if (screenshot) await alice.screenshot({ path: screenshot });

  step('Leave closes the socket for good; Connect comes back');
  const bobSockets = [];
  bob.on('websocket', () => bobSockets.push(Date.now()));
  await bob.click('#leave');
  await until('bob should be closed after leaving', [bob], async () => (await status(bob)).state === 'closed');
  await sleep(2000); // past the first two retries, were it retrying
  if (bobSockets.length) await fail(`bob opened ${bobSockets.length} WebSocket(s) after leaving`, [bob]);
  if (await bob.inputValue('#name') !== 'bob') await fail('the name form does not offer "bob" again', [bob]);
  await bob.click('#connect');
  await connected(bob, '#general', 2);

  step('a frame over 32 KiB is refused on the page, not sent');
  // ASCII over the limit, and multi-byte text whose characters fit but whose
  // UTF-8 bytes do not (11,000 × 3 bytes): the limit is on the frame's bytes.
  for (const [what, big] of [['41,000 ASCII bytes', 'x'.repeat(41_000)], ['11,000 euro signs', '€'.repeat(11_000)]]) {
    const errorsBefore = await count(alice, error('over the server\'s limit of 32 KiB'));
    await say(alice, big);
    await until(`alice should refuse ${what}`, [alice], async () =>
      await count(alice, error('over the server\'s limit of 32 KiB')) === errorsBefore + 1);
    if (await alice.inputValue('#text') !== big) await fail(`the refused text (${what}) was not kept for editing`, [alice]);
    await exactly(alice, 0, body(big), `the refused message (${what})`);
  }
  await alice.fill('#text', '');
  // Just under the limit goes through (the frame adds some 60 bytes).
  const fits = 'y'.repeat(32_000);
  await say(alice, fits);
  await sees(bob, message('alice', fits), 'a 32,000-byte message');
  if ((await status(alice)).state !== 'open') await fail('alice\'s socket closed', [alice]);
  for (const page of [bob, carol]) await exactly(page, 0, (l) => l.text.startsWith('xxxxxxxx') || l.text.startsWith('€€€'), 'a refused message');

  step('the server\'s errors, a 1009 close and other orders of frames (through Playwright)');
  // dave's socket runs through Playwright, which forwards both ways and lets
  // the test inject what a server could send. Messages typed "refuse me" are
  // answered with an error instead of reaching the server. The server's
  // frames are reordered into the orders the gateway did not use above: the
  // join's ack before its `joined` broadcast, a message's broadcast before
  // its ack.
  const routes = [];
  const dave = await open('dave', '#lab', '#lab', (page) => page.routeWebSocket(/./, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      const frame = JSON.parse(m);
      if (frame.text === 'refuse me')
        ws.send(JSON.stringify({ type: 'error', action: 'send', ref: frame.ref, message: 'that is not allowed here' }));
      else server.send(m);
    });
    let joined = null; // held until the join's ack
    const acks = []; // send acks, held until their broadcast
    server.onMessage((m) => {
      const frame = JSON.parse(m);
      if (frame.type === 'joined' && frame.name === 'dave' && !joined) joined = m;
      else if (frame.type === 'ack' && frame.action === 'send') acks.push(m);
      else {
        ws.send(m);
        if (frame.type === 'ack' && frame.action === 'join' && joined) ws.send(joined);
        if (frame.type === 'message' && frame.name === 'dave' && acks.length) ws.send(acks.shift());
      }
    });
    routes.push(ws);
  }));
  await exactly(dave, 0, system('dave joined #lab'), 'its own join after its ack');
  await say(dave, 'dave, broadcast first');
  await until('dave\'s message should settle', [dave], async () =>
    (await lines(dave)).some((l) => l.text === 'dave, broadcast first' && !l.classes.includes('pending')));
  await sleep(500);
  await exactly(dave, 1, body('dave, broadcast first'), 'its message (echoed before its ack)');
  const inject = (value) => routes.at(-1).send(typeof value === 'string' ? value : JSON.stringify(value));
  const noJson = async () => {
    const raw = (await lines(dave)).filter((l) => /[{}]/.test(l.text));
    if (raw.length) await fail(`raw JSON shown: ${JSON.stringify(raw)}`, [dave]);
  };
  inject({ type: 'error', action: null, ref: null, message: 'the channel is read-only' });
  await sees(dave, error('the channel is read-only'), 'the error message');
  inject({ message: 'Internal server error', connectionId: 'abc=', requestId: 'req-1' });
  await sees(dave, error('the server failed to handle that message'), 'API Gateway\'s error, readable');
  inject('<i>not json</i>');
  const odd = await sees(dave, error('does not understand'), 'a frame that is not JSON');
  if (odd.elements !== 0) await fail('a non-JSON frame became markup', [dave]);
  inject({ type: 'message', channel: '#lab', name: '<img src=x>', connection: 'other', text: 'from a strange name' });
  const strange = await sees(dave, message('<img src=x>', 'from a strange name'), 'a name with markup, as text');
  if (strange.elements !== 0) await fail('a name became markup', [dave]);
  await noJson();

  await say(dave, 'refuse me');
  await sees(dave, error('not sent: that is not allowed here'), 'the refusal of its message');
  const refused = (await lines(dave)).find(body('refuse me'));
  if (!refused.classes.includes('failed') || refused.classes.includes('pending'))
    await fail(`the refused message should be marked failed: ${JSON.stringify(refused)}`, [dave]);

  await routes.at(-1).close({ code: 1009 });
  await sees(dave, error('a message was too large for the server (1009)'), 'the 1009 explanation');
  // ... and it comes back by itself.
  await connected(dave, '#lab', 2);
  await say(dave, 'dave is back');
  await sees(dave, (l) => l.text === 'dave is back' && l.classes.includes('own') && !l.classes.includes('pending'), 'its message settled');
  await noJson();

  if (pageErrors.length) throw new Error(`errors in the pages:\n  ${pageErrors.join('\n  ')}`);
  console.log('browser chat: ok');
} catch (e) {
  console.error(e instanceof Error ? e.stack : e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
