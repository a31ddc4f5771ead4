// Subprotocol negotiation as a browser sees it, against the graphql_ws
// example: offering graphql-transport-ws opens with that protocol and the
// handshake's reply comes back; offering only an unsupported protocol fails
// the connection (the gateway refuses the $connect, as the handler does on
// AWS), which the browser reports as an error and a close with 1006.
// Usage: node subprotocols.mjs http://127.0.0.1:PORT/
import { chromium } from 'playwright-core';

const [url] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  await page.goto(url);
  const result = await page.evaluate(async (url) => {
    const ws = url.replace(/^http/, 'ws');
    const attempt = (protocols, send) => new Promise((resolve) => {
      const socket = new WebSocket(ws, protocols);
      const seen = { opened: false, protocol: null, error: false, messages: [] };
      const done = (why) => { seen.end = why; resolve(seen); };
      const timer = setTimeout(() => done('timeout'), 10000);
      socket.onopen = () => {
        seen.opened = true;
        seen.protocol = socket.protocol;
        if (send) socket.send(send); else { clearTimeout(timer); socket.close(); }
      };
      socket.onerror = () => { seen.error = true; };
      socket.onmessage = (e) => {
        seen.messages.push(e.data);
        clearTimeout(timer);
        socket.close();
      };
      socket.onclose = (e) => { clearTimeout(timer); seen.code = e.code; done('closed'); };
    });
    return {
      supported: await attempt(['graphql-transport-ws'], '{"type":"connection_init"}'),
      unsupported: await attempt(['v12.stomp']),
    };
  }, url);
  const { supported, unsupported } = result;
  const problems = [];
  if (!supported.opened) problems.push('graphql-transport-ws did not open');
  if (supported.protocol !== 'graphql-transport-ws') problems.push(`protocol was ${JSON.stringify(supported.protocol)}`);
  if (supported.messages[0] !== '{"type":"connection_ack"}') problems.push(`no connection_ack: ${JSON.stringify(supported.messages)}`);
  if (unsupported.opened) problems.push('v12.stomp opened');
  if (!unsupported.error || unsupported.code !== 1006) problems.push(`v12.stomp did not fail as a refused handshake: ${JSON.stringify(unsupported)}`);
  console.log('subprotocols: ' + JSON.stringify(result));
  if (problems.length) {
    console.log('subprotocols: FAILED: ' + problems.join('; '));
    process.exitCode = 1;
  } else {
    console.log('subprotocols: ok');
  }
} finally {
  await browser.close();
}
