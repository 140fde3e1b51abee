// HTTP/1.1 over a bare socket, for what fetch cannot do: a body that trickles in one byte at a
// time (a slow or hostile client), or a request head of any size. Shared with the fault suite.

export interface RawResponse {
  status: number;
  headers: Headers;
  body: string;
  /** From the request's first byte to the end of the answer, ms. */
  elapsedMs: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

/**
 * Reads one response (head, then Content-Length bytes of body, or up to the close). Rejects
 * when nothing complete has arrived within `timeoutMs`.
 */
async function readResponse(conn: Deno.Conn, started: number, timeoutMs: number) {
  const deadline = started + timeoutMs;
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(16 * 1024);
  let headEnd = -1;
  let status = 0;
  const headers = new Headers();
  let length = Infinity;
  for (;;) {
    if (headEnd >= 0 && buf.length - headEnd >= length) break;
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`no complete response within ${timeoutMs} ms`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(chunk).catch(() => null),
      new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), left)),
    ]);
    clearTimeout(timer);
    if (n === "timeout") throw new Error(`no complete response within ${timeoutMs} ms`);
    if (n === null) break;
    const next = new Uint8Array(buf.length + n);
    next.set(buf);
    next.set(chunk.subarray(0, n), buf.length);
    buf = next;
    if (headEnd < 0) {
      const text = dec.decode(buf);
      const at = text.indexOf("\r\n\r\n");
      if (at < 0) continue;
      headEnd = enc.encode(text.slice(0, at + 4)).length;
      const [statusLine, ...lines] = text.slice(0, at).split("\r\n");
      status = Number(statusLine.split(" ")[1]);
      for (const line of lines) {
        const colon = line.indexOf(":");
        headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
      }
      length = Number(headers.get("content-length") ?? Infinity);
    }
  }
  if (headEnd < 0) throw new Error("the connection closed before a response");
  return {
    status,
    headers,
    body: dec.decode(buf.subarray(headEnd, headEnd + Math.min(length, buf.length))),
    elapsedMs: performance.now() - started,
  };
}

/** Sends `head` (and `body`) as they are on a new connection; resolves with the answer. */
export async function rawRequest(
  port: number,
  head: string,
  opts: { body?: string; timeoutMs?: number } = {},
): Promise<RawResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const started = performance.now();
  try {
    // The server may answer and close before it has read everything (an oversized head).
    await writeAll(conn, enc.encode(head + (opts.body ?? ""))).catch(() => {});
    return await readResponse(conn, started, opts.timeoutMs ?? 10_000);
  } finally {
    conn.close();
  }
}

export interface SlowPost {
  /** The answer, whenever it comes (rejects after `timeoutMs`). */
  response: Promise<RawResponse>;
  /** Body bytes sent so far. */
  sent(): number;
  /** Stops sending and closes the connection (a client that goes away). */
  close(): void;
}

/**
 * POSTs to `path` declaring a body of `declaredBytes`, sends `first`, then one more byte
 * (a space) every `everyMs`, never completing the body, until answered or closed. The
 * connection stays open after the answer until close(), as a stubborn client's would.
 */
export async function slowPost(opts: {
  port: number;
  path?: string;
  declaredBytes: number;
  first?: string;
  everyMs: number;
  contentType?: string;
  timeoutMs?: number;
}): Promise<SlowPost> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: opts.port });
  const started = performance.now();
  const first = enc.encode(opts.first ?? "");
  await writeAll(
    conn,
    enc.encode(
      `POST ${opts.path ?? "/logs"} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        `Content-Type: ${opts.contentType ?? "application/json"}\r\n` +
        `Content-Length: ${opts.declaredBytes}\r\n\r\n`,
    ),
  );
  await writeAll(conn, first);
  let sent = first.length;
  let stopped = false;
  let closed = false;
  const response = readResponse(conn, started, opts.timeoutMs ?? 60_000).finally(() => {
    stopped = true;
  });
  response.catch(() => {});
  void (async () => {
    while (!stopped && sent < opts.declaredBytes - 1) {
      await new Promise((r) => setTimeout(r, opts.everyMs));
      if (stopped) break;
      try {
        await conn.write(enc.encode(" "));
        sent++;
      } catch {
        break;
      }
    }
  })();
  return {
    response,
    sent: () => sent,
    close() {
      stopped = true;
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch { /* already closed */ }
    },
  };
}
