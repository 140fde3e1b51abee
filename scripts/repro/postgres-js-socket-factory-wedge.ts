// Standalone reproduction: postgres.js 3.4.9 never uses a connection again after its `socket`
// factory (a documented option) failed once: the connection stays in the "connecting" queue.
//   deno run -A postgres-js-socket-factory-wedge.ts postgres://user:pass@127.0.0.1:5432/db
// The factory fails its first call (as a TLS handshake or a tunnel might) and works after.
// Seen: "first: err:ECONNREFUSED / second: HANG (10 s)" with max: 1.
import net from "node:net";
import postgres from "postgres";

const url = new URL(Deno.args[0]);
let calls = 0;
const sql = postgres(url.href, {
  max: 1,
  onnotice: () => {},
  socket: () => {
    if (calls++ === 0) {
      return Promise.reject(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }));
    }
    return net.connect(Number(url.port || 5432), url.hostname);
  },
} as postgres.Options<Record<string, postgres.PostgresType>>);
const race = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise((r) => setTimeout(() => r(`HANG (${ms / 1000} s)`), ms))]);
console.log("first:", await race(sql`select 1`.then(() => "ok", (e) => "err:" + e.code), 10_000));
console.log("second:", await race(sql`select 1`.then(() => "ok", (e) => "err:" + e.code), 10_000));
console.log("factory calls:", calls);
Deno.exit(0);
