// Shared OpenAPI pieces: the problem schema and the responses every route can give.
import { z } from "@hono/zod-openapi";
import { PROBLEM_CONTENT_TYPE } from "./problem.ts";

export const ProblemSchema = z.object({
  type: z.string().openapi({ example: "about:blank" }),
  title: z.string().openapi({ example: "Bad Request" }),
  status: z.number().int().openapi({ example: 400 }),
  detail: z.string().openapi({ example: "limit: must be between 1 and 1000" }),
  instance: z.string().openapi({ example: "/logs" }),
  errors: z.array(z.object({ field: z.string(), message: z.string() })).optional()
    .openapi({ description: "Every offending field, when the input was at fault." }),
}).openapi("Problem");

export const problemResponse = (description: string) => ({
  content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemSchema } },
  description,
});
