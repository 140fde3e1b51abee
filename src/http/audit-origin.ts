// Who made a change and through which request, for the audit log (src/access/audit.ts).
import type { Context } from "hono";
import { getConnInfo } from "hono/deno";
import type { AuditOrigin } from "../access/audit.ts";
import { callerOf } from "./middleware/auth.ts";

/**
 * The caller's label, the socket's peer address (not X-Forwarded-For, which any client can
 * write) and the request id.
 */
export function auditOrigin(c: Context): AuditOrigin {
  let clientAddr: string | null = null;
  try {
    clientAddr = getConnInfo(c).remote.address ?? null;
  } catch {
    // Not served by Deno.serve (app.request in tests): no peer.
  }
  return { actor: callerOf(c), clientAddr, requestId: c.get("requestId") ?? null };
}
