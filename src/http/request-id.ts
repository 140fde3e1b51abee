import type { MiddlewareHandler } from "hono";

declare module "hono" {
  interface ContextVariableMap {
    requestId: string;
  }
}

// A caller's id is kept only when it is short and plain, so it cannot forge log lines.
const ACCEPTABLE = /^[A-Za-z0-9._:@\-]{1,128}$/;

export const requestId = (
  { header = "X-Request-Id" }: { header?: string } = {},
): MiddlewareHandler =>
  async function requestId(c, next) {
    const given = c.req.header(header);
    const id = given && ACCEPTABLE.test(given) ? given : crypto.randomUUID();
    c.set("requestId", id);
    await next();
    c.res.headers.set(header, id);
  };
