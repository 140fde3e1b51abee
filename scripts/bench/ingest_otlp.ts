// ingest-otlp: POST /v1/traces with protobuf ExportTraceServiceRequests of 100 SERVER spans
// (built by the OpenTelemetry JS SDK, serialized by @opentelemetry/otlp-transformer, as the
// SDK's proto exporter sends them), against POST /logs with JSON arrays of the same 100 events,
// 8 connections each, in alternating rounds on one server. Every request carries new trace ids
// (patched in by the Lua script), since spans are deduplicated by trace and span id.
import postgres from "postgres";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { BenchContext } from "./run.ts";
import { throwawayDatabase } from "./lib/env.ts";
import { BENCH_SERVICES } from "./lib/events.ts";
import { log, maxRssRow, mb, median, ms, num } from "./lib/report.ts";
import { startServer } from "./lib/server.ts";
import { ensureWrk, runDenoLoad, runWrk, type WrkResult } from "./lib/wrk.ts";

const BENCH = "ingest-otlp";
const kb = (bytes: number) => `${num(bytes / 1024)} kB`;
const SPANS = 100;
const BODIES = 64;
const CLIENTS = 8;
const ROUNDS = 5;
const PHASE_S = 8;
const WARMUP_S = 3;
const GOAL_RATIO = 0.8;
const GOAL_P99_MS = 50;
const PROTOBUF = "application/x-protobuf";
// The first id byte of each path's trace ids (see idPrefix in lua/observian.lua), which also
// tells their rows apart: attributes->>'trace_id' starts with "a0" (JSON) or "b0" (OTLP).
const JSON_MARKER = 0xa0;
const OTLP_MARKER = 0xb0;

const ROUTES = [
  ["GET", "/users/{id}"],
  ["GET", "/users/{id}"],
  ["POST", "/orders"],
  ["GET", "/orders/{id}"],
  ["PUT", "/cart/{id}"],
  ["GET", "/search"],
] as const;

/** One body's patch sites: byte offsets where an id prefix (8 bytes or 16 hex digits) goes. */
interface PatchedBody {
  body: Uint8Array;
  offsets: number[];
}

/** 100 SERVER spans over the bench services, as the SDK records them, and the same as events. */
function recordBody(
  tracers: Map<string, { tracer: ReturnType<BasicTracerProvider["getTracer"]> }>,
  memories: InMemorySpanExporter[],
  now: number,
): { spans: ReadableSpan[]; events: Record<string, unknown>[] } {
  for (let i = 0; i < SPANS; i++) {
    const service = BENCH_SERVICES[Math.floor(Math.random() * BENCH_SERVICES.length)];
    const r = Math.random();
    const status = r < 0.03 ? 503 : r < 0.08 ? 404 : r < 0.12 ? 201 : 200;
    const [method, route] = ROUTES[i % ROUTES.length];
    const startMs = Math.floor(now - Math.random() * 10 * 60_000);
    // Whole microseconds, as most SDKs measure; the event keeps them (sub-millisecond latency).
    const latencyUs = Math.round(Math.exp(3 + Math.random() * 2) * 1000);
    const span = tracers.get(service)!.tracer.startSpan(`${method} ${route}`, {
      kind: SpanKind.SERVER,
      // [s, ns]: a number before the process's time origin would be read as performance time.
      startTime: [Math.floor(startMs / 1000), (startMs % 1000) * 1e6],
      attributes: {
        "http.request.method": method,
        "http.route": route,
        "http.response.status_code": status,
        "url.path": route.replace("{id}", String(1000 + i)),
      },
    });
    if (status >= 500) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: "upstream timed out" });
    }
    span.end([Math.floor(startMs / 1000), (startMs % 1000) * 1e6 + latencyUs * 1000]);
  }
  const spans = memories.flatMap((m) => {
    const s = m.getFinishedSpans();
    m.reset();
    return s;
  });
  // What the OTLP mapping stores for each span (src/ingest/otlp/traces.ts), as POST /logs JSON.
  const events = spans.map((s) => {
    const traceId = s.spanContext().traceId;
    const spanId = s.spanContext().spanId;
    const startMs = s.startTime[0] * 1000 + s.startTime[1] / 1e6;
    const endMs = s.endTime[0] * 1000 + s.endTime[1] / 1e6;
    return {
      service_name: s.resource.attributes["service.name"],
      status_code: s.attributes["http.response.status_code"],
      latency_ms: Math.round((endMs - startMs) * 1000) / 1000,
      event_type: `${s.attributes["http.request.method"]} ${s.attributes["http.route"]}`,
      timestamp: new Date(Math.floor(startMs)).toISOString(),
      message: s.status.code === SpanStatusCode.ERROR ? s.status.message : null,
      attributes: {
        trace_id: traceId,
        span_id: spanId,
        "http.request.method": s.attributes["http.request.method"],
        "http.route": s.attributes["http.route"],
      },
      event_id: `otlp:${traceId}:${spanId}`,
    };
  });
  return { spans, events };
}

function indexesOf(haystack: Uint8Array, needle: Uint8Array): number[] {
  const found: number[] = [];
  outer: for (let i = 0; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    found.push(i);
  }
  return found;
}

const hexBytes = (hex: string) => Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16));

/** Bodies of both paths, with where every trace id (or its hex) sits in each. */
function buildBodies(): { otlp: PatchedBody[]; json: PatchedBody[] } {
  const memories: InMemorySpanExporter[] = [];
  const tracers = new Map(BENCH_SERVICES.map((service) => {
    const memory = new InMemorySpanExporter();
    memories.push(memory);
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ "service.name": service }),
      spanProcessors: [new SimpleSpanProcessor(memory)],
    });
    return [service, { tracer: provider.getTracer("observian-bench") }];
  }));
  const otlp: PatchedBody[] = [];
  const json: PatchedBody[] = [];
  const enc = new TextEncoder();
  const now = Date.now();
  for (let b = 0; b < BODIES; b++) {
    const { spans, events } = recordBody(tracers, memories, now);
    const proto = ProtobufTraceSerializer.serializeRequest(spans);
    if (!proto) throw new Error("otlp-transformer serialized nothing");
    const text = enc.encode(JSON.stringify(events));
    const protoOffsets: number[] = [];
    const jsonOffsets: number[] = [];
    for (const s of spans) {
      const id = s.spanContext().traceId;
      const inProto = indexesOf(proto, hexBytes(id));
      const inJson = indexesOf(text, enc.encode(id));
      // Once in the span; twice in the event (attributes.trace_id and event_id).
      if (inProto.length !== 1 || inJson.length !== 2) {
        throw new Error(`trace id ${id} found ${inProto.length}× / ${inJson.length}×`);
      }
      protoOffsets.push(...inProto);
      jsonOffsets.push(...inJson);
    }
    otlp.push({ body: proto, offsets: protoOffsets.sort((x, y) => x - y) });
    json.push({ body: text, offsets: jsonOffsets.sort((x, y) => x - y) });
  }
  return { otlp, json };
}

/** The Lua script's "patched" file: per body a line "<length> <offset>…", then its bytes. */
async function writeBodies(file: string, bodies: PatchedBody[]): Promise<void> {
  const enc = new TextEncoder();
  const parts = bodies.flatMap((b) => [
    enc.encode(`${b.body.length} ${b.offsets.join(" ")}\n`),
    b.body,
  ]);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  await Deno.writeFile(file, out);
}

/** The Deno fallback's copy of the Lua patch: the same 8 id bytes (or 16 hex digits). */
function patch(
  b: PatchedBody,
  marker: number,
  phase: number,
  n: number,
  hex: boolean,
): Uint8Array<ArrayBuffer> {
  const id = [marker, phase, 0];
  for (let i = 4; i >= 0; i--) id.push(Math.floor(n / 256 ** i) % 256);
  const prefix = hex
    ? new TextEncoder().encode(id.map((v) => v.toString(16).padStart(2, "0")).join(""))
    : Uint8Array.from(id);
  const out = new Uint8Array(b.body);
  for (const o of b.offsets) out.set(prefix, o);
  return out;
}

interface PathTotals {
  sent: number;
  acked: number;
  partial: number;
  failed: number;
}

export async function ingestOtlp(ctx: BenchContext): Promise<void> {
  const t0 = performance.now();
  const { otlp, json } = buildBodies();
  log(
    BENCH,
    `built ${BODIES} protobuf bodies of ${SPANS} spans (${
      kb(otlp.reduce((n, b) => n + b.body.length, 0) / BODIES)
    } each) and the same events as JSON (${
      kb(json.reduce((n, b) => n + b.body.length, 0) / BODIES)
    }) in ${Math.round(performance.now() - t0)} ms`,
  );
  const db = await throwawayDatabase(BENCH);
  ctx.defer(db.close);
  const server = await startServer(BENCH, db.url);
  ctx.defer(server.stop);
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  ctx.defer(() => sql.end({ timeout: 5 }));

  const otlpFile = await Deno.makeTempFile({ prefix: "observian-bench-otlp-" });
  const jsonFile = await Deno.makeTempFile({ prefix: "observian-bench-json-" });
  ctx.defer(() => Deno.remove(otlpFile).catch(() => {}));
  ctx.defer(() => Deno.remove(jsonFile).catch(() => {}));
  await writeBodies(otlpFile, otlp);
  await writeBodies(jsonFile, json);
  const useWrk = await ensureWrk(BENCH);
  const rssNote = () => `server RSS ${mb(server.rss())}`;

  const paths = {
    otlp: {
      name: "POST /v1/traces protobuf",
      url: `${server.base}/v1/traces`,
      file: otlpFile,
      bodies: otlp,
      contentType: PROTOBUF,
      ok: 200,
      marker: OTLP_MARKER,
      hex: false,
    },
    json: {
      name: "POST /logs JSON",
      url: `${server.base}/logs`,
      file: jsonFile,
      bodies: json,
      contentType: "application/json",
      ok: 201,
      marker: JSON_MARKER,
      hex: true,
    },
  } as const;
  type PathName = keyof typeof paths;
  const totals: Record<PathName, PathTotals> = {
    otlp: { sent: 0, acked: 0, partial: 0, failed: 0 },
    json: { sent: 0, acked: 0, partial: 0, failed: 0 },
  };

  const run = async (which: PathName, phase: number, durationS: number, label: string) => {
    const p = paths[which];
    const r: WrkResult = useWrk
      ? await runWrk(BENCH, {
        url: p.url,
        mode: "patched",
        bodiesFile: p.file,
        args: [p.contentType, String(p.ok), String(p.marker), String(phase), p.hex ? "hex" : "bin"],
        threads: 2,
        connections: CLIENTS,
        durationS,
        label,
        status: rssNote,
      })
      : await runDenoLoad(BENCH, {
        url: p.url,
        connections: CLIENTS,
        durationS,
        label,
        ok: p.ok,
        contentType: p.contentType,
        next: (i) => ({
          method: "POST",
          body: patch(p.bodies[i % p.bodies.length], p.marker, phase, i + 1, p.hex),
        }),
        status: rssNote,
      });
    const t = totals[which];
    t.sent += r.sent * SPANS;
    t.acked += r.acked * SPANS;
    t.partial += r.partial;
    t.failed += r.other + r.errors.connect + r.errors.read + r.errors.timeout;
    return r;
  };

  server.resetMaxRss();
  // Not counted: a fresh server's JIT warm-up and first connections.
  await run("json", 0, WARMUP_S, "warm-up POST /logs");
  await run("otlp", 0, WARMUP_S, "warm-up POST /v1/traces");

  const rates: Record<PathName, number[]> = { otlp: [], json: [] };
  const p99s: Record<PathName, number[]> = { otlp: [], json: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternate which goes first, so neither always follows the other's leftovers.
    const order: PathName[] = round % 2 ? ["json", "otlp"] : ["otlp", "json"];
    for (const which of order) {
      const r = await run(
        which,
        round,
        PHASE_S,
        `round ${round}/${ROUNDS} ${paths[which].name} ×${SPANS}`,
      );
      rates[which].push((r.acked * SPANS) / r.durationS);
      p99s[which].push(r.latencyMs.p99);
    }
    const i = round - 1;
    log(
      BENCH,
      `round ${round}: OTLP ${num(rates.otlp[i])} events/s p99 ${ms(p99s.otlp[i])}, JSON ${
        num(rates.json[i])
      } events/s p99 ${ms(p99s.json[i])} (ratio ${(rates.otlp[i] / rates.json[i]).toFixed(2)})`,
    );
  }

  const rows = await sql<{ path: string; n: string }[]>`
    select left(attributes->>'trace_id', 2) as path, count(*) as n from log_events
    group by 1`;
  const stored = (marker: number) =>
    Number(rows.find((r) => r.path === marker.toString(16))?.n ?? 0);

  const otlpRate = median(rates.otlp);
  const jsonRate = median(rates.json);
  const otlpP99 = median(p99s.otlp);
  const jsonP99 = median(p99s.json);
  const failed = totals.otlp.failed + totals.json.failed;
  ctx.report.add({
    bench: BENCH,
    metric: `events/s, protobuf ×${SPANS} spans, ${CLIENTS} clients`,
    value: num(otlpRate),
    baseline: `POST /logs JSON ${num(jsonRate)} events/s`,
    ratio: (otlpRate / jsonRate).toFixed(2),
    goal: `ratio ≥ ${GOAL_RATIO}`,
    pass: otlpRate / jsonRate >= GOAL_RATIO && failed === 0 && totals.otlp.partial === 0,
    note: `median of ${ROUNDS} alternating ${PHASE_S}-s rounds; OTLP ${
      rates.otlp.map((v) => num(v)).join(" / ")
    }, JSON ${
      rates.json.map((v) => num(v)).join(" / ")
    }` +
      (failed ? `; ${failed} requests not acknowledged` : "") +
      (totals.otlp.partial ? `; ${totals.otlp.partial} OTLP answers with partialSuccess` : ""),
  });
  ctx.report.add({
    bench: BENCH,
    metric: `p99 per ${SPANS}-span request`,
    value: ms(otlpP99),
    baseline: `POST /logs JSON p99 ${ms(jsonP99)}`,
    ratio: (otlpP99 / jsonP99).toFixed(2),
    goal: `≤ ${GOAL_P99_MS} ms`,
    pass: otlpP99 <= GOAL_P99_MS,
    note: `median of the rounds' p99s; OTLP ${p99s.otlp.map((v) => ms(v)).join(" / ")}`,
  });
  for (const which of ["otlp", "json"] as const) {
    const t = totals[which];
    const n = stored(paths[which].marker);
    ctx.report.add({
      bench: BENCH,
      metric: `every acknowledged event stored, ${paths[which].name}`,
      value: `${num(n)} rows`,
      baseline: `${num(t.acked)} acknowledged, ${num(t.sent)} sent`,
      ratio: "",
      goal: "acked ≤ rows ≤ sent",
      pass: t.acked <= n && n <= t.sent,
      note: which === "otlp" ? "warm-up included; rows told apart by their trace ids" : undefined,
    });
  }
  ctx.report.add(maxRssRow(BENCH, server.maxRss()));
}
