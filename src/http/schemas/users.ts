// The bodies of the sign-in and /users endpoints.
import { z } from "@hono/zod-openapi";
import { ROLES } from "../../access/principal.ts";

const ROLE_RULE = `must be one of ${ROLES.join(", ")}, or null`;
const RoleEnum = z.enum(ROLES as ["admin", "writer", "reader"]);

/** Logins as providers give them: GitHub's, an email, an OIDC preferred_username. */
export const LOGIN = /^[A-Za-z0-9_@+\-][A-Za-z0-9._@+\-]{0,199}$/;

export const Me = z.object({
  login: z.string().openapi({ example: "octocat" }),
  role: RoleEnum.nullable().openapi({
    description: "Null: signed in, but no admin has given this person a role yet.",
    example: "reader",
  }),
  teams: z.array(z.string()).openapi({ example: ["Payments Team"] }),
}).openapi("Me");

export const UserInput = z.strictObject({
  role: z.enum(ROLES as ["admin", "writer", "reader"], { error: ROLE_RULE }).nullable().openapi({
    description: "admin: everything; writer: ingest; reader: queries. Null takes every right " +
      "away (the person can still sign in).",
    example: "reader",
  }),
  teams: z.array(
    z.string().min(1, { error: "must not be empty" }).max(200, {
      error: "must be at most 200 characters",
    }).refine((s) => !s.includes("\0"), { error: "must not contain NUL characters" }),
  ).max(100, { error: "at most 100 teams" }).optional().openapi({
    description: "Limit the person to the services these teams own; left as is when absent.",
    example: ["Payments Team"],
  }),
}).openapi("UserInput");

export const User = z.object({
  login: z.string().openapi({ example: "octocat" }),
  email: z.string().nullable().openapi({ example: "octocat@example.com" }),
  provider: z.enum(["github", "oidc"]).nullable().openapi({
    description: "Null until the person first signs in.",
    example: "github",
  }),
  role: RoleEnum.nullable().openapi({ example: "reader" }),
  teams: z.array(z.string()).openapi({ example: ["Payments Team"] }),
  created_at: z.string().openapi({ example: "2026-12-02T08:00:00.000Z" }),
  last_seen_at: z.string().nullable().openapi({
    description: "Updated at most once a minute per instance.",
    example: "2026-12-02T09:00:00.000Z",
  }),
}).openapi("User");
