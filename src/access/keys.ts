// API keys kept in PostgreSQL (sql/014_api_keys.sql): created with a random token shown once,
// stored as its SHA-256 only, listed without it, deleted to revoke. Keys from API_KEYS are
// admin keys that are never stored. Knows nothing of HTTP.
import { ConflictError } from "../errors.ts";
import type { Sql } from "../db/connect.ts";
import { type AuditOrigin, recordAudit } from "./audit.ts";
import { randomSecret, sha256Hex, throttled, toHex } from "./secrets.ts";
import type { KeyCache } from "./key-cache.ts";
import type { Principal, Role } from "./principal.ts";

/** Tokens start with this, so that secret scanners can find leaked ones. */
export const TOKEN_PREFIX = "obs_";
/** Characters of the token after TOKEN_PREFIX kept as the key's visible prefix. */
const VISIBLE_CHARS = 8;

export interface KeyInput {
  name: string;
  role: Role;
  teams?: string[];
  services?: string[];
  rate_limit_per_s?: number | null;
  expires_at?: Date | null;
}

export interface ApiKey {
  id: number;
  name: string;
  role: Role;
  teams: string[];
  services: string[];
  rate_limit_per_s: number | null;
  expires_at: Date | null;
  prefix: string;
  created_at: Date;
  last_used_at: Date | null;
}

const COLUMNS = `id::int, name, role, teams, services, rate_limit_per_s, expires_at, prefix,
  created_at, last_used_at`;

/**
 * Stores a new key and its audit entry in one transaction; returns it with its token, which is
 * never available again (and is not in the audit entry).
 */
export async function createKey(
  sql: Sql,
  input: KeyInput,
  origin: AuditOrigin,
): Promise<ApiKey & { token: string }> {
  const token = TOKEN_PREFIX + randomSecret();
  const digest = await sha256Hex(token);
  const prefix = token.slice(TOKEN_PREFIX.length, TOKEN_PREFIX.length + VISIBLE_CHARS);
  // Lists as one JSON text parameter: postgres.js can send JS arrays wrongly on a fresh
  // connection, and JSON-encodes a string again when the parameter is typed jsonb.
  const teams = JSON.stringify(input.teams ?? []);
  const services = JSON.stringify(input.services ?? []);
  return await sql.begin(async (tx) => {
    const [row] = await tx<ApiKey[]>`
      insert into api_keys (name, role, teams, services, rate_limit_per_s, expires_at, prefix,
                            token_sha256)
      values (${input.name}, ${input.role},
              array(select jsonb_array_elements_text(${teams}::text::jsonb)),
              array(select jsonb_array_elements_text(${services}::text::jsonb)),
              ${input.rate_limit_per_s ?? null}, ${input.expires_at ?? null}, ${prefix},
              decode(${digest}, 'hex'))
      returning ${tx.unsafe(COLUMNS)}`;
    await recordAudit(tx, origin, {
      action: "key.create",
      target: `key#${row.id}`,
      detail: {
        name: row.name,
        role: row.role,
        teams: row.teams,
        services: row.services,
        rate_limit_per_s: row.rate_limit_per_s,
        expires_at: row.expires_at?.toISOString() ?? null,
        prefix: row.prefix,
      },
    });
    return { ...row, token };
  });
}

export function listKeys(sql: Sql): Promise<ApiKey[]> {
  return sql<ApiKey[]>`select ${sql.unsafe(COLUMNS)} from api_keys order by id`;
}

/** Revokes a key and records it, in one transaction: false when there was none with that id. */
export async function deleteKey(
  sql: Sql,
  id: number,
  origin: AuditOrigin,
  opts: { keepLastAdmin?: boolean } = {},
): Promise<boolean> {
  return await sql.begin(async (tx) => {
    // Two revocations of the last two admin keys must not both pass.
    if (opts.keepLastAdmin) {
      await tx`select pg_advisory_xact_lock(hashtext('observian.api_keys.admin'))`;
    }
    const [row] = await tx<Pick<ApiKey, "name" | "role" | "prefix">[]>`
      delete from api_keys where id = ${id} returning name, role, prefix`;
    if (!row) return false;
    if (opts.keepLastAdmin && row.role === "admin") {
      const [left] = await tx<{ n: number }[]>`
        select count(*)::int as n from api_keys
        where role = 'admin' and (expires_at is null or expires_at > now())`;
      if (left.n === 0) {
        throw new ConflictError(
          "this is the last admin key and there is no other way to administer (API_KEYS or " +
            "sign-in): create another admin key first, or set API_KEYS",
        );
      }
    }
    // The delete notifies every instance, which forgets its remembered keys when this commits
    // (trigger of sql/017_api_keys_notify.sql; see key-cache.ts).
    await recordAudit(tx, origin, {
      action: "key.revoke",
      target: `key#${id}`,
      detail: { name: row.name, role: row.role, prefix: row.prefix },
    });
    return true;
  });
}

/** Whether any key is stored (with API_KEYS, whether access control is on). */
export async function anyKeyStored(sql: Sql): Promise<boolean> {
  const [r] = await sql<{ any: boolean }[]>`select exists (select 1 from api_keys) as any`;
  return r.any;
}

interface Lane {
  running: Promise<ApiKey | null> | null;
  next: Promise<ApiKey | null> | null;
}
const lanes = new Map<string, Lane>();

/**
 * One lookup of a digest at a time per instance: requests for the same key that arrive while a
 * lookup runs share the next one, which starts after they arrived, so each answer still reflects
 * every revocation committed before its request came (refused at once), while a busy shipper's
 * concurrent requests cost one query per round trip rather than one each.
 */
function lookupCoalesced(sql: Sql, digest: string): Promise<ApiKey | null> {
  let lane = lanes.get(digest);
  if (!lane) lanes.set(digest, lane = { running: null, next: null });
  const running = lane.running;
  if (!running) return startLookup(sql, digest, lane);
  const l = lane;
  l.next ??= running.catch(() => null).then(() => {
    l.next = null;
    return startLookup(sql, digest, l);
  });
  return l.next;
}

function startLookup(sql: Sql, digest: string, lane: Lane): Promise<ApiKey | null> {
  const run = (async () => {
    const [row] = await sql<ApiKey[]>`
      select ${sql.unsafe(COLUMNS)} from api_keys
      where token_sha256 = decode(${digest}, 'hex') and (expires_at is null or expires_at > now())`;
    return row ?? null;
  })();
  lane.running = run;
  const done = () => {
    if (lane.running !== run) return;
    lane.running = null;
    if (!lane.next) lanes.delete(digest);
  };
  run.then(done, done);
  return run;
}

/** last_used_at is written at most this often per key and instance, not once per request. */
const LAST_USED_EVERY_MS = 60_000;
const touchLastUsed = throttled(LAST_USED_EVERY_MS);

/**
 * The stored key a token belongs to, if it exists and has not expired. The lookup is by the
 * token's digest (unique index): a revoked (deleted) or expired key is refused at once, on every
 * instance.
 */
export async function findKey(
  sql: Sql,
  token: string,
  /** The token's SHA-256, when the caller has it already. */
  tokenSha256?: Uint8Array,
  /** Keys remembered by this instance while it hears of every revocation. */
  cache?: KeyCache<ApiKey>,
): Promise<Principal | null> {
  if (!token.startsWith(TOKEN_PREFIX)) return null;
  const digest = tokenSha256 ? toHex(tokenSha256) : await sha256Hex(token);
  let row = cache?.get(digest) ?? null;
  if (!row) {
    const since = cache?.epoch() ?? 0;
    row = await lookupCoalesced(sql, digest);
    if (!row) return null;
    cache?.set(digest, row, since);
  }
  touchLastUsed(row.id, () => sql`update api_keys set last_used_at = now() where id = ${row.id}`);
  return {
    source: "key",
    id: row.id,
    name: row.name,
    role: row.role,
    teams: row.teams,
    services: row.services,
    prefix: row.prefix,
    rateLimitPerS: row.rate_limit_per_s,
  };
}
