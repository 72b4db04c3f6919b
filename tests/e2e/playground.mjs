// Drives the GraphiQL playground in headless Chromium against a running BFF and prints one JSON line
// with what it saw. Usage: node playground.mjs GRAPHQL_URL CHROMIUM_PATH NODE_PACKAGE_JSON
// (NODE_PACKAGE_JSON: the package.json whose node_modules hold puppeteer-core, i.e. .ci/package.json).
// Every host but 127.0.0.1 is unresolvable for the browser, so the page must work offline.
import { createRequire } from 'node:module';

const [url, chromium, packageJson] = process.argv.slice(2);
const puppeteer = createRequire(packageJson)('puppeteer-core');
const report = { requests: [], wsProtocols: [], errors: [] };
const browser = await puppeteer.launch({
  executablePath: chromium,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-quic',
         '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
});
try {
  const page = await browser.newPage();
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  let subscribed = false;
  cdp.on('Network.webSocketWillSendHandshakeRequest',
    e => report.wsProtocols.push(e.request.headers['Sec-WebSocket-Protocol']));
  cdp.on('Network.webSocketFrameSent', e => { subscribed ||= e.response.payloadData.includes('"subscribe"'); });
  page.on('request', r => { if (!r.url().startsWith('data:')) report.requests.push(r.url()); });
  page.on('pageerror', e => report.errors.push(e.message));
  await page.goto(url, { waitUntil: 'networkidle0', timeout: 20000 });
  await page.waitForSelector('.graphiql-query-editor .CodeMirror', { timeout: 20000 });
  const editorValue = sel => page.evaluate(s => document.querySelector(s)?.CodeMirror.getValue() ?? '', sel);
  const result = () => editorValue('.result-window .CodeMirror');
  async function run(query) {
    await page.evaluate(q => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(q), query);
    // GraphiQL parses the edited document after a debounce; running before it sends the old one.
    await new Promise(r => setTimeout(r, 800));
    await page.click('.graphiql-execute-button');
  }
  await run('{ customer(id: "1") { firstName } }');
  await page.waitForFunction(() => document.querySelector('.result-window .CodeMirror')?.CodeMirror.getValue().includes('firstName'),
    { timeout: 10000 });
  report.query = JSON.parse(await result());

  await run('subscription { playlistUpdated(playlistId: "2") { change trackId playlist { name } } }');
  for (let i = 0; i < 100 && !subscribed; i++) await new Promise(r => setTimeout(r, 50));
  // The event must be published after the server registered the subscription: retry with new tracks.
  for (const trackId of ['5', '6', '7', '8', '9']) {
    await new Promise(r => setTimeout(r, 300));
    await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ query: `mutation { addTrackToPlaylist(input: { playlistId: "2", trackId: "${trackId}" }) { userErrors { code } } }` }) });
    const seen = await page.waitForFunction(
      () => document.querySelector('.result-window .CodeMirror')?.CodeMirror.getValue().includes('TRACK_ADDED'),
      { timeout: 1500 }).then(() => true, () => false);
    if (seen) break;
  }
  report.subscription = JSON.parse((await result()) || 'null');
} catch (e) {
  report.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
