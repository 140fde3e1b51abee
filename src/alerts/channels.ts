// Notification channels (sql/019_alerts.sql alert_channels): an Alertmanager-style webhook or a
// Slack incoming webhook, by unique name. The secret (webhook HMAC key) is stored for the
// notifier and never listed. Every change writes its audit row in the same transaction.
import type { Sql, Tx } from "../db/connect.ts";
import { ConflictError, InvalidInputError, NotFoundError } from "../errors.ts";
import { type AuditOrigin, recordAudit } from "../access/audit.ts";

export const CHANNEL_TYPES = ["webhook", "slack"] as const;
export type ChannelType = typeof CHANNEL_TYPES[number];
export const CHANNEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const MAX_URL_CHARS = 2000;
export const MAX_SECRET_CHARS = 256;

/** A channel as the notifier needs it, secret included. */
export interface Channel {
  id: number;
  name: string;
  type: ChannelType;
  url: string;
  secret: string | null;
}

/** A channel as it is listed: no secret, and a URL without what may be a credential. */
export interface ChannelOut {
  id: number;
  name: string;
  type: ChannelType;
  url: string;
  has_secret: boolean;
  created_at: string;
}

export interface ChannelInput {
  name: string;
  type: ChannelType;
  url: string;
  secret?: string | null;
}

/** Every channel with its secret, by name: for the notifier. */
export function listChannels(sql: Sql | Tx): Promise<Channel[]> {
  return sql<Channel[]>`
    select id::float8 as id, name, type, url, secret from alert_channels order by name`;
}

/**
 * The URL as listed: a Slack incoming-webhook URL is itself the credential (its path), so only
 * its origin is shown; a webhook's user-info and query (where tokens hide) are dropped.
 */
export function displayUrl(type: ChannelType, url: string): string {
  try {
    const u = new URL(url);
    return type === "slack" ? `${u.origin}/…` : `${u.origin}${u.pathname}${u.search ? "?…" : ""}`;
  } catch {
    return "(unreadable)";
  }
}

interface ChannelRow extends Channel {
  created_at: Date;
}

const out = (r: ChannelRow): ChannelOut => ({
  id: r.id,
  name: r.name,
  type: r.type,
  url: displayUrl(r.type, r.url),
  has_secret: r.secret !== null,
  created_at: r.created_at.toISOString(),
});

/** Every channel as listed (GET /alerts/channels), by name. */
export async function listChannelsOut(sql: Sql): Promise<ChannelOut[]> {
  const rows = await sql<ChannelRow[]>`
    select id::float8 as id, name, type, url, secret, created_at
    from alert_channels order by name`;
  return rows.map(out);
}

/** Refuses what the table would refuse, naming the field; http(s) URLs only. */
export function validateChannel(input: ChannelInput): void {
  const errors = [];
  if (!CHANNEL_NAME.test(input.name)) {
    errors.push({
      field: "name",
      message: "must be 1-64 characters of letters, digits and . _ -, starting with a letter " +
        "or digit",
    });
  }
  let url: URL | null = null;
  try {
    url = new URL(input.url);
  } catch { /* named below */ }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    errors.push({ field: "url", message: "must be an http or https URL" });
  } else if (input.url.length > MAX_URL_CHARS) {
    errors.push({ field: "url", message: `must be at most ${MAX_URL_CHARS} characters` });
  }
  const secret = input.secret ?? null;
  if (secret !== null && input.type !== "webhook") {
    errors.push({ field: "secret", message: "only webhook channels sign their bodies" });
  } else if (secret !== null && (secret.length < 1 || secret.length > MAX_SECRET_CHARS)) {
    errors.push({ field: "secret", message: `must be 1-${MAX_SECRET_CHARS} characters` });
  }
  if (errors.length > 0) throw new InvalidInputError(errors, "malformed");
}

/** Stores a channel and its audit row (never the secret); 409 when the name is taken. */
export async function createChannel(
  sql: Sql,
  input: ChannelInput,
  origin: AuditOrigin,
): Promise<ChannelOut> {
  validateChannel(input);
  return await sql.begin(async (tx) => {
    const [row] = await tx<ChannelRow[]>`
      insert into alert_channels (name, type, url, secret)
      values (${input.name}, ${input.type}, ${input.url}, ${input.secret ?? null})
      on conflict (name) do nothing
      returning id::float8 as id, name, type, url, secret, created_at`;
    if (!row) throw new ConflictError(`a channel named "${input.name}" exists already`);
    await recordAudit(tx, origin, {
      action: "alert_channel.create",
      target: `alert_channel:${row.name}`,
      detail: {
        id: row.id,
        type: row.type,
        url: displayUrl(row.type, row.url),
        has_secret: row.secret !== null,
      },
    });
    return out(row);
  });
}

/** Channel names of `names` that do not exist, with their positions. */
export async function missingChannels(
  sql: Sql | Tx,
  names: readonly string[],
): Promise<{ index: number; name: string }[]> {
  if (names.length === 0) return [];
  const rows = await sql<{ name: string }[]>`
    select name from alert_channels
    where name in (select jsonb_array_elements_text(${JSON.stringify(names)}::text::jsonb))`;
  const found = new Set(rows.map((r) => r.name));
  return names.flatMap((name, index) => found.has(name) ? [] : [{ index, name }]);
}

/**
 * Deletes a channel and records it. Refused (409) while a rule names it, so that no rule is
 * left routing to nothing; teams using it as their default fall back (on delete set null).
 */
export async function deleteChannel(sql: Sql, name: string, origin: AuditOrigin): Promise<void> {
  await sql.begin(async (tx) => {
    // Serialises with rule writes that check channel names (rules.ts takes the same lock).
    await tx`select pg_advisory_xact_lock(hashtext('observian.alert_channels'))`;
    const users = await tx<{ id: number }[]>`
      select id::float8 as id from alert_rules where channels ? ${name}::text order by id`;
    if (users.length > 0) {
      throw new ConflictError(
        `channel "${name}" is used by alert rule${users.length > 1 ? "s" : ""} ` +
          users.map((u) => `#${u.id}`).join(", ") + ": change them first",
      );
    }
    const [row] = await tx<{ id: number; type: ChannelType }[]>`
      delete from alert_channels where name = ${name} returning id::float8 as id, type`;
    if (!row) throw new NotFoundError(`no channel named "${name}"`);
    await recordAudit(tx, origin, {
      action: "alert_channel.delete",
      target: `alert_channel:${name}`,
      detail: { id: row.id, type: row.type },
    });
  });
}
