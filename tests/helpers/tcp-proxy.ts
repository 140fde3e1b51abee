// A TCP proxy in front of PostgreSQL that tests use to break the network the way production
// does: connections cut (a restart, a failover), the server gone (refused), or a silent
// partition where bytes stop flowing and nothing says so.

export interface TcpProxy {
  port: number;
  /** postgres:// URL like `target`, through the proxy. */
  url: string;
  /** Closes every open connection; new ones are still accepted. */
  cut(): void;
  /** Refuses new connections (closes the listener) and cuts the open ones: the server is gone. */
  down(): void;
  /** Accepts connections again after down(). */
  up(): void;
  /**
   * Stops forwarding bytes on every connection, open or new, without closing any; `down`
   * holds only what the server sends (it still receives, executes and commits).
   */
  blackhole(on: boolean, direction?: "both" | "down"): void;
  /** Connections open now. */
  readonly open: number;
  close(): Promise<void>;
}

export function startTcpProxy(target: string): TcpProxy {
  const t = new URL(target);
  const targetPort = Number(t.port || 5432);
  const pairs = new Set<{ a: Deno.Conn; b: Deno.Conn }>();
  let listener: Deno.Listener | null = null;
  let port = 0;
  let holes: "none" | "both" | "down" = "none";
  const released = new Set<() => void>();

  const listen = () => {
    listener = Deno.listen({ hostname: "127.0.0.1", port });
    port = (listener.addr as Deno.NetAddr).port;
    void accept(listener);
  };
  const accept = async (l: Deno.Listener) => {
    try {
      for await (const a of l) void serve(a);
    } catch { /* listener closed */ }
  };
  const serve = async (a: Deno.Conn) => {
    let b: Deno.Conn;
    try {
      b = await Deno.connect({ hostname: t.hostname, port: targetPort });
    } catch {
      a.close();
      return;
    }
    const pair = { a, b };
    pairs.add(pair);
    const end = () => {
      if (!pairs.delete(pair)) return;
      for (const c of [a, b]) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
    };
    await Promise.allSettled([pump(a, b, "up"), pump(b, a, "down")]);
    end();
  };
  // Copies until either side ends; while blackholed, holds bytes back instead of writing them.
  const pump = async (from: Deno.Conn, to: Deno.Conn, way: "up" | "down") => {
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await from.read(buf);
      if (n === null) return;
      while (holes === "both" || holes === way) {
        await new Promise<void>((r) => released.add(r));
      }
      let off = 0;
      while (off < n) off += await to.write(buf.subarray(off, n));
    }
  };
  const cut = () => {
    for (const { a, b } of [...pairs]) {
      for (const c of [a, b]) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
    }
    pairs.clear();
  };
  listen();
  const u = new URL(target);
  u.port = String(port);
  return {
    port,
    url: u.toString(),
    cut,
    down() {
      listener?.close();
      listener = null;
      cut();
    },
    up() {
      if (!listener) listen();
    },
    blackhole(on, direction = "both") {
      holes = on ? direction : "none";
      if (!on) {
        for (const r of released) r();
        released.clear();
      }
    },
    get open() {
      return pairs.size;
    },
    async close() {
      this.blackhole(false);
      this.down();
      await new Promise((r) => setTimeout(r, 0));
    },
  };
}
