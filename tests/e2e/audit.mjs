// Runs the graphql-http server audits (GraphQL over HTTP conformance) against a running endpoint.
// Usage: node audit.mjs <graphql-http package dir> <endpoint URL>
// Prints one JSON array: [{id, name, status, reason}], status one of ok/notice/warn/error.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [packageDir, url] = process.argv.slice(2);
if (!packageDir || !url) {
  console.error('usage: node audit.mjs <graphql-http package dir> <endpoint URL>');
  process.exit(2);
}
const { auditServer } = await import(pathToFileURL(join(packageDir, 'lib', 'index.mjs')).href);
const results = await auditServer({ url });
const out = [];
for (const result of results) {
  let reason = result.reason ?? null;
  if (result.response) {
    const body = await result.response.text().catch(() => '');
    reason = `${reason} (status ${result.response.status}: ${body.slice(0, 200)})`;
  }
  out.push({ id: result.id, name: result.name, status: result.status, reason });
}
console.log(JSON.stringify(out));
