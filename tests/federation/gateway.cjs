// Compose subgraphs with @apollo/composition and serve the supergraph with @apollo/gateway.
// Usage: NODE_PATH=.ci/node_modules node gateway.cjs NAME=URL...
// Fetches each subgraph's SDL (`{ _service { sdl } }`), composes them (exit 3 printing the
// composition errors when they do not compose), serves the supergraph through Apollo Server on a
// free 127.0.0.1 port, prints `GATEWAY <url>` once it listens, and runs until it is killed.
const { parse } = require('graphql');
const { composeServices } = require('@apollo/composition');
const { ApolloGateway } = require('@apollo/gateway');
const { ApolloServer } = require('@apollo/server');
const { startStandaloneServer } = require('@apollo/server/standalone');

async function main() {
  const subgraphs = [];
  for (const argument of process.argv.slice(2)) {
    const at = argument.indexOf('=');
    const name = argument.slice(0, at);
    const url = argument.slice(at + 1);
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ _service { sdl } }' }),
    });
    const body = await response.json();
    if (!body.data) throw new Error(`${name}: no SDL: ${JSON.stringify(body)}`);
    subgraphs.push({ name, url, typeDefs: parse(body.data._service.sdl) });
  }
  const composed = composeServices(subgraphs);
  if (composed.errors) {
    console.error(composed.errors.map((error) => error.message).join('\n'));
    process.exit(3);
  }
  const gateway = new ApolloGateway({ supergraphSdl: composed.supergraphSdl });
  const server = new ApolloServer({ gateway });
  const { url } = await startStandaloneServer(server, { listen: { host: '127.0.0.1', port: 0 } });
  console.log(`GATEWAY ${url}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
