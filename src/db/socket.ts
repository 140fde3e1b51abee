// The sockets of our database handles (postgres.js's documented `socket` option). They tell
// the handle when a connection is lost, before postgres.js hears of it: postgres.js 3.4.9 does
// not recover every connection it loses (see connect.ts), so the handle swaps itself for a
// fresh one synchronously and nothing sent in reaction to the loss can land on the dying
// connection. TLS is negotiated here too, because once postgres.js upgrades a socket itself
// the plain socket's events no longer show what happens to the connection.
import { Buffer } from "node:buffer";
import type { EventEmitter } from "node:events";
import net from "node:net";
import tls from "node:tls";

/** What postgres.js passes the factory (its parsed options). */
interface SocketOptions {
  host: string[];
  port: number[];
  path?: string | false;
}

export type TlsMode = "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full";

/** sslmode (or ssl) from the URL's query, as libpq spells it; absent: disable, as postgres.js. */
export function tlsModeOf(url: string): TlsMode {
  const q = new URL(url).searchParams;
  const mode = q.get("sslmode") ?? q.get("ssl") ??
    (q.get("sslrootcert") === "system" ? "verify-full" : "disable");
  if (mode === "true") return "require";
  if (mode === "false") return "disable";
  const modes: TlsMode[] = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];
  if (!modes.includes(mode as TlsMode)) throw new Error(`unsupported sslmode "${mode}"`);
  return mode as TlsMode;
}

/** The factory postgres.js calls for each connection. */
export function watchedSocket(
  opts: { tls: TlsMode; connectTimeoutMs: number; onLost: (err: unknown) => void },
) {
  return async (o: SocketOptions): Promise<net.Socket> => {
    const raw = new net.Socket();
    if (o.path) raw.connect(o.path);
    else raw.connect(o.port[0], o.host[0]);
    // Without TLS postgres.js writes its start-up while the socket connects.
    if (opts.tls === "disable") return watch(raw, opts.onLost, false);
    const deadline = Date.now() + opts.connectTimeoutMs;
    try {
      await next(raw, "connect", deadline);
      // SSLRequest: length 8, code 80877103. The server answers one byte, S or N.
      raw.write(Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]));
      const [answer] = await next(raw, "data", deadline) as [Uint8Array];
      if (answer[0] !== 83) {
        if (opts.tls === "allow" || opts.tls === "prefer") return watch(raw, opts.onLost, true);
        throw Object.assign(new Error(`the server refuses TLS (sslmode=${opts.tls})`), {
          code: "TLS_REFUSED",
        });
      }
      const host = o.host[0];
      const secure = tls.connect({
        socket: raw,
        servername: net.isIP(host) ? undefined : host,
        rejectUnauthorized: opts.tls === "verify-ca" || opts.tls === "verify-full",
      });
      await next(secure, "secureConnect", deadline);
      return watch(secure, opts.onLost, true);
    } catch (err) {
      raw.destroy();
      return failed(err);
    }
  };
}

/**
 * A socket that fails as a refused connection does, once postgres.js listens to it. A factory
 * that throws instead leaves its connection in postgres.js's "connecting" queue for good: with
 * one connection, every later query would wait forever.
 */
function failed(err: unknown): net.Socket {
  const socket = new net.Socket();
  // postgres.js writes its start-up at once; that must not fail first with another error.
  socket.write = () => true;
  setTimeout(() => socket.destroy(err as Error), 0);
  return socket;
}

/** The arguments of `emitter`'s next `event`; rejects on error, close or the deadline. */
function next(emitter: EventEmitter, event: string, deadline: number): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const done = (fn: () => void) => {
      clearTimeout(timer);
      emitter.off(event, onEvent);
      emitter.off("error", onError);
      emitter.off("close", onClose);
      fn();
    };
    const onEvent = (...args: unknown[]) => done(() => resolve(args));
    const onError = (err: unknown) => done(() => reject(err));
    const onClose = () =>
      done(() => reject(Object.assign(new Error("connection closed"), { code: "ECONNRESET" })));
    const timer = setTimeout(
      () =>
        done(() =>
          reject(Object.assign(new Error("timed out connecting"), { code: "CONNECT_TIMEOUT" }))
        ),
      Math.max(0, deadline - Date.now()),
    );
    emitter.once(event, onEvent);
    emitter.once("error", onError);
    emitter.once("close", onClose);
  });
}

/**
 * Reports the socket's loss: an error, or the server closing it, once it was connected. Closes
 * that postgres.js asks for (end(), or destroy() with no error: idle and lifetime limits, ending
 * the handle, a connect timeout) are not losses, nor are
 * failures to connect (postgres.js retries those; nothing is stale yet). The methods are wrapped
 * on the instance rather than listened to: postgres.js removes every listener of a socket it
 * upgrades, and the handle must hear of a loss before postgres.js does.
 */
function watch(socket: net.Socket, onLost: (err: unknown) => void, open: boolean): net.Socket {
  type Method = (...args: unknown[]) => unknown;
  const s = socket as unknown as { emit: Method; end: Method; destroy: Method; write: Method };
  const { emit, end, destroy, write } = s;
  // query.cancel() opens a connection of its own that the server closes once it has read the
  // CancelRequest: that close is the protocol, not a loss.
  let ignored = false;
  s.write = (...args) => {
    if (isCancelRequest(args[0])) {
      ignored = true;
      open = false;
    }
    s.write = write;
    return write.apply(socket, args);
  };
  s.emit = (event, ...args) => {
    if (event === "connect") open = !ignored;
    else if (open && (event === "error" || event === "end" || event === "close")) {
      open = false;
      onLost(event === "error" ? args[0] : { code: "CONNECTION_CLOSED" });
    }
    return emit.call(socket, event, ...args);
  };
  s.end = (...args) => {
    open = false;
    return end.apply(socket, args);
  };
  // Node's streams destroy a socket with the error they are about to emit: that is a loss.
  s.destroy = (...args) => {
    if (args[0] === undefined) open = false;
    return destroy.apply(socket, args);
  };
  return socket;
}

/** CancelRequest: length 16, code 80877102 (the only message a cancel connection sends). */
function isCancelRequest(chunk: unknown): boolean {
  return chunk instanceof Uint8Array && chunk.length === 16 &&
    chunk[3] === 16 && chunk[4] === 4 && chunk[5] === 210 && chunk[6] === 22 && chunk[7] === 46;
}
