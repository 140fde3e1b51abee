// Who made a change and through which request, for the audit log (src/access/audit.ts).
import type { Context } from "hono";
import { getConnInfo } from "hono/deno";
import type { AuditOrigin } from "../access/audit.ts";
import { principalLabel } from "../access/principal.ts";

/**
 * The caller's label (or `actor`, for a refusal, where no principal was admitted), the socket's
 * peer address (not X-Forwarded-For, which any client can write) and the request id.
 */
export function auditOrigin(c: Context, actor?: string): AuditOrigin {
  let clientAddr: string | null = null;
  try {
    clientAddr = getConnInfo(c).remote.address ?? null;
  } catch {
    // Not served by Deno.serve (app.request in tests): no peer.
  }
  // As callerOf (middleware/auth.ts), which imports this module for refusals.
  const p = c.get("principal");
  return {
    actor: actor ?? (p ? principalLabel(p) : "anonymous"),
    clientAddr,
    requestId: c.get("requestId") ?? null,
  };
}
