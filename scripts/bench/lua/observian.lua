-- wrk script for the Observian benchmarks: wrk -s observian.lua URL -- MODE [BODIES_FILE]
--   single  POST /logs, one event per request, varied service/status/latency/type
--   batch   POST /logs, JSON arrays read from BODIES_FILE (one per line), cycled
--   get     plain GET of the URL (baseline)
-- Counts what was sent and what was acknowledged (201 for POSTs, 200 for GET) per thread, and
-- prints one "WRK_RESULT {json}" line at the end for scripts/bench/lib/wrk.ts.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1] or "get"
  sent, acked, other = 0, 0, 0
  math.randomseed(os.time() * 1000 + tid * 7919)
  if mode == "single" then
    services = {}
    for i = 0, 49 do services[#services + 1] = string.format("svc-%02d", i) end
    types = { '"http.request"', '"http.request"', '"db.query"', '"cache.miss"', 'null', 'null' }
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    ok_status = 201
    -- Requests are built up front and cycled: wrk shares the server's two cores, so every
    -- microsecond it spends formatting is taken from the server being measured.
    requests = {}
    for i = 1, 4096 do
      local r = math.random()
      local status = 200
      if r < 0.03 then status = 503 elseif r < 0.08 then status = 404 elseif r < 0.12 then status = 201 end
      local body = string.format(
        '{"service_name":"%s","status_code":%d,"latency_ms":%.2f,"event_type":%s,"message":"bench %d-%d"}',
        services[math.random(#services)], status, math.random() * 250, types[math.random(#types)], tid, i)
      requests[i] = wrk.format(nil, nil, nil, body)
    end
    nextRequest = 0
  elseif mode == "batch" then
    bodies = {}
    for line in io.lines(args[2]) do bodies[#bodies + 1] = line end
    -- Threads start at different bodies so concurrent requests carry different rows.
    nextBody = ((tid - 1) * 7) % #bodies
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    ok_status = 201
  else
    ok_status = 200
  end
end

function request()
  sent = sent + 1
  if mode == "single" then
    nextRequest = nextRequest % #requests + 1
    return requests[nextRequest]
  elseif mode == "batch" then
    nextBody = nextBody % #bodies + 1
    return wrk.format(nil, nil, nil, bodies[nextBody])
  end
  return wrk.format(nil, nil, nil, nil)
end

function response(status, headers, body)
  if status == ok_status then acked = acked + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local s, a, o = 0, 0, 0
  for _, t in ipairs(threads) do
    s = s + t:get("sent")
    a = a + t:get("acked")
    o = o + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"sent":%d,"acked":%d,"other":%d,"requests":%d,"duration_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    s, a, o, summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
