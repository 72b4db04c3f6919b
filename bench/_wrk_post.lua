-- wrk script of bench/instances.py: POST one GraphQL request (BENCH_BODY) as JSON, the threads spread
-- over the ports of BENCH_PORTS in turn (one port: all on it; two ports: like a round-robin load
-- balancer in front of two instances). Prints one JSON line of figures when done.
local ports = {}
for port in string.gmatch(os.getenv("BENCH_PORTS") or "", "%d+") do
  table.insert(ports, port)
end
local turn = 0

function setup(thread)
  thread.addr = wrk.lookup("127.0.0.1", ports[turn % #ports + 1])[1]
  turn = turn + 1
end

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "socket_errors": %d, "non_2xx": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
