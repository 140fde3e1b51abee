// Builds the HTTP application from its dependencies; does no I/O of its own.
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Config } from "./config.ts";
import type { Sql } from "./db/connect.ts";
import { InvalidInputError } from "./errors.ts";
import { accessLog } from "./http/access-log.ts";
import { healthRoutes } from "./http/health.ts";
import { notFound, onError } from "./http/problem.ts";
import { requestId } from "./http/request-id.ts";
import { VERSION } from "./version.ts";

export interface AppDeps {
  sql: Sql;
  config: Config;
  /** performance.now() at process start, for uptime. */
  startedAt?: number;
}

export function buildApp(deps: AppDeps): OpenAPIHono {
  const app = new OpenAPIHono({
    // zod validation failures become one 400 problem naming every bad field.
    defaultHook: (result) => {
      if (!result.success) {
        throw new InvalidInputError(
          result.error.issues.map((i) => ({
            field: i.path.join(".") || "(request)",
            message: i.message,
          })),
          400,
        );
      }
    },
  });
  app.use("*", requestId());
  app.use("*", accessLog());
  app.onError(onError);
  app.notFound(notFound(() => app.routes));

  healthRoutes(app, { sql: deps.sql, version: VERSION, startedAt: deps.startedAt ?? 0 });

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Observian",
      version: VERSION,
      description: "Log ingestion, query and monitoring for microservices.",
    },
  });
  return app;
}
