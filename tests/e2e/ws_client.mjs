// A subscription client we did not write: the graphql-ws npm client (graphql-transport-ws protocol).
//
// usage: node ws_client.mjs NODE_MODULES URL COUNT QUERY [VARIABLES_JSON]
//
// Subscribes once and prints one JSON line per event: {"event": "connected"}, then
// {"event": "next", "value": {...}} for each result until COUNT of them, {"event": "complete"}, or
// {"event": "error", "error": ...} (GraphQL errors as a list, a closed socket as {code, reason}).
// Exits 0 after COUNT results or completion, 1 on an error.
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [modules, url, count, query, variables] = process.argv.slice(2);
const require = createRequire(join(modules, 'index.js'));
const { createClient } = require('graphql-ws');
const WebSocket = require('ws');

const print = (line) => process.stdout.write(JSON.stringify(line) + '\n');

const client = createClient({
  url,
  webSocketImpl: WebSocket, // Node 20 has no global WebSocket the client can use
  lazy: false,
  retryAttempts: 0,
  on: { connected: () => print({ event: 'connected' }) },
});

let seen = 0;
const finished = new Promise((resolve, reject) => {
  client.subscribe(
    { query, variables: variables ? JSON.parse(variables) : undefined },
    {
      next: (value) => {
        print({ event: 'next', value });
        seen += 1;
        if (seen >= Number(count)) resolve();
      },
      error: reject,
      complete: () => {
        print({ event: 'complete' });
        resolve();
      },
    },
  );
});

try {
  await finished;
} catch (error) {
  const described = Array.isArray(error)
    ? error
    : error && typeof error.code === 'number'
      ? { code: error.code, reason: error.reason }
      : String(error);
  print({ event: 'error', error: described });
  process.exitCode = 1;
} finally {
  await client.dispose();
}
