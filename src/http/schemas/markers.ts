// A marker as GET /markers and GET /logs/summary answer it.
import { z } from "@hono/zod-openapi";

export const Marker = z.object({
  service_name: z.string().openapi({ example: "octo-org/octo-repo" }),
  time: z.string().openapi({ example: "2026-12-02T13:30:00.000000Z" }),
  kind: z.enum(["deployment", "release"]),
  title: z.string().openapi({ example: "production: success" }),
  url: z.string().nullable().openapi({ example: "https://github.com/octo-org/octo-repo/actions" }),
}).openapi("Marker");
