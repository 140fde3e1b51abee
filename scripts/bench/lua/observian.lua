-- wrk script for the Observian benchmarks: wrk -s observian.lua URL -- MODE [BODIES_FILE]
--   single  POST /logs, one event per request, varied service/status/latency/type
--   batch   POST /logs, JSON arrays read from BODIES_FILE (one per line), cycled
--   get     plain GET of the URL (baseline)
--   patched BODIES_FILE CONTENT_TYPE OK_STATUS MARKER PHASE hex|bin
--           POST bodies from BODIES_FILE (lib/patched.ts's format), each request with new ids:
--           at every offset the body lists, 8 bytes (bin) or 16 hex digits are overwritten with
--           MARKER, PHASE, the thread and a per-thread counter, so no two requests of a run
--           carry the same trace ids (spans are deduplicated by trace and span id)
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
  elseif mode == "patched" then
    bodies, offsets = {}, {}
    local f = assert(io.open(args[2], "rb"))
    local data = f:read("*a")
    f:close()
    local pos = 1
    while pos <= #data do
      local eol = string.find(data, "\n", pos, true)
      local head = string.sub(data, pos, eol - 1)
      local nums = {}
      for n in string.gmatch(head, "%d+") do nums[#nums + 1] = tonumber(n) end
      local len = nums[1]
      local offs = {}
      for i = 2, #nums do offs[#offs + 1] = nums[i] end
      bodies[#bodies + 1] = string.sub(data, eol + 1, eol + len)
      offsets[#offsets + 1] = offs
      pos = eol + 1 + len
    end
    wrk.method = "POST"
    wrk.headers["Content-Type"] = args[3]
    ok_status = tonumber(args[4])
    marker, phase, hex = tonumber(args[5]), tonumber(args[6]), args[7] == "hex"
    patchLen = hex and 16 or 8
    nextBody = ((tid - 1) * 7) % #bodies
    partial = 0
  else
    ok_status = 200
  end
end

-- 8 id bytes unique to this request: marker, phase, thread, then a 5-byte counter.
local function idPrefix(n)
  local b = { marker, phase, tid }
  for i = 4, 0, -1 do b[#b + 1] = math.floor(n / 256 ^ i) % 256 end
  if hex then
    return string.format("%02x%02x%02x%02x%02x%02x%02x%02x", unpack(b))
  end
  return string.char(unpack(b))
end

function request()
  sent = sent + 1
  if mode == "single" then
    nextRequest = nextRequest % #requests + 1
    return requests[nextRequest]
  elseif mode == "batch" then
    nextBody = nextBody % #bodies + 1
    return wrk.format(nil, nil, nil, bodies[nextBody])
  elseif mode == "patched" then
    nextBody = nextBody % #bodies + 1
    local body, offs = bodies[nextBody], offsets[nextBody]
    local prefix = idPrefix(sent)
    local parts, pos = {}, 1
    for i = 1, #offs do
      parts[#parts + 1] = string.sub(body, pos, offs[i])
      parts[#parts + 1] = prefix
      pos = offs[i] + patchLen + 1
    end
    parts[#parts + 1] = string.sub(body, pos)
    return wrk.format(nil, nil, nil, table.concat(parts))
  end
  return wrk.format(nil, nil, nil, nil)
end

function response(status, headers, body)
  if status == ok_status then
    acked = acked + 1
    -- An OTLP answer with a body is a partialSuccess: some spans were refused.
    if mode == "patched" and not hex and body and #body > 0 then partial = partial + 1 end
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local s, a, o, p = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    s = s + t:get("sent")
    a = a + t:get("acked")
    o = o + t:get("other")
    p = p + (t:get("partial") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"sent":%d,"acked":%d,"other":%d,"partial":%d,"requests":%d,"duration_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    s, a, o, p, summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
