// Request counter for json-server 0.17 (`json-server --middlewares counter.js db.json`).
//
// Tests count the downstream requests a GraphQL operation caused, the same way against json-server
// as against our own demo services:
//
//   GET    /_stats  -> 200 {"total": N, "requests": {"GET /tracks": 3, "GET /albums/1": 1}}
//   DELETE /_stats  -> 200 {"total": 0, "requests": {}}   (resets the counters)
//
// Keys are the method, one space and the path without the query string, percent-decoded like the
// demo services' aiohttp `request.path`.
// Requests to /_stats itself are not counted. Every other request is counted when it arrives,
// before json-server handles it, so 304s, 404s and failed writes count too.
'use strict'

const STATS_PATH = '/_stats'

let total = 0
let requests = Object.create(null) // "METHOD /path" -> count; no prototype, so any path is a safe key

function pathOf(req) {
  // originalUrl is what the client sent, even if a --routes rewriter changed req.url.
  const raw = req.originalUrl.split('?', 1)[0]
  try {
    return decodeURIComponent(raw)
  } catch {
    return raw // malformed escapes: count the path as sent
  }
}

function snapshot() {
  return { total, requests: { ...requests } }
}

module.exports = (req, res, next) => {
  const path = pathOf(req)
  if (path !== STATS_PATH) {
    const key = `${req.method} ${path}`
    requests[key] = (requests[key] || 0) + 1
    total += 1
    return next()
  }
  // A live counter: never let a client or proxy answer it from a cache.
  res.set('Cache-Control', 'no-store')
  if (req.method === 'GET') {
    return res.status(200).json(snapshot())
  }
  if (req.method === 'DELETE') {
    total = 0
    requests = Object.create(null)
    return res.status(200).json(snapshot())
  }
  res.set('Allow', 'GET, DELETE')
  return res.status(405).json({ error: 'method not allowed' })
}
