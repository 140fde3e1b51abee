// /alerts/channels and /teams: where notifications go (admin to change, read to list).
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { createChannel, deleteChannel, listChannelsOut } from "../../alerts/channels.ts";
import { listTeams, setTeamChannel } from "../../alerts/teams.ts";
import type { AppContext } from "../context.ts";
import { auditOrigin } from "../audit-origin.ts";
import { guarded, needs } from "../middleware/auth.ts";
import { authResponses, problemResponse } from "../openapi.ts";
import {
  Channel,
  ChannelInput,
  ChannelName,
  Team,
  TeamInput,
  TeamName,
} from "../schemas/alerts.ts";
import { json } from "./alerts-shared.ts";

const NameParam = z.object({
  name: ChannelName.openapi({ param: { name: "name", in: "path" } }),
});
const TeamParam = z.object({
  team: TeamName.openapi({ param: { name: "team", in: "path" } }),
});

/** POST, GET /alerts/channels; DELETE /alerts/channels/{name}; PUT /teams/{team}; GET /teams. */
export function alertChannelsRoutes(app: OpenAPIHono, ctx: AppContext): void {
  const admin = needs("admin");
  const read = needs("read");
  const tags = ["alerts"];

  app.openapi(
    guarded(
      createRoute({
        method: "post",
        path: "/alerts/channels",
        operationId: "createAlertChannel",
        tags,
        summary: "Create a notification channel",
        description: "The secret is stored for signing and never shown again (has_secret).",
        ...admin,
        request: {
          body: { required: true, content: { "application/json": { schema: ChannelInput } } },
        },
        responses: {
          201: json(Channel, "The channel, without its secret"),
          400: problemResponse("A bad field"),
          409: problemResponse("A channel of that name exists"),
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => c.json(await createChannel(ctx.sql, c.req.valid("json"), auditOrigin(c)), 201),
  );

  app.openapi(
    guarded(
      createRoute({
        method: "get",
        path: "/alerts/channels",
        operationId: "listAlertChannels",
        tags,
        summary: "Every channel, by name, without secrets",
        ...read,
        responses: { 200: json(z.array(Channel), "Channels by name"), ...authResponses },
      }),
      ctx.access,
    ),
    async (c) => c.json(await listChannelsOut(ctx.sql), 200),
  );

  app.openapi(
    guarded(
      createRoute({
        method: "delete",
        path: "/alerts/channels/{name}",
        operationId: "deleteAlertChannel",
        tags,
        summary: "Delete a channel",
        description: "Refused while an alert rule names it; teams using it as their default " +
          "are left without one.",
        ...admin,
        request: { params: NameParam },
        responses: {
          204: { description: "Deleted" },
          400: problemResponse("Bad name"),
          404: problemResponse("No such channel"),
          409: problemResponse("An alert rule names the channel"),
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => {
      await deleteChannel(ctx.sql, c.req.valid("param").name, auditOrigin(c));
      return c.body(null, 204);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "put",
        path: "/teams/{team}",
        operationId: "putTeam",
        tags,
        summary: "Set or clear a team's default channel",
        description: "Alerts of the team's services go there when their rule names no channel.",
        ...admin,
        request: {
          params: TeamParam,
          body: { required: true, content: { "application/json": { schema: TeamInput } } },
        },
        responses: {
          200: json(Team, "The team"),
          400: problemResponse("A bad team name, or a channel that does not exist"),
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const { team } = c.req.valid("param");
      const { channel } = c.req.valid("json");
      return c.json(await setTeamChannel(ctx.sql, team, channel, auditOrigin(c)), 200);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "get",
        path: "/teams",
        operationId: "listTeams",
        tags,
        summary: "Every team (owners of services, and teams given a channel), by name",
        ...read,
        responses: { 200: json(z.array(Team), "Teams by name"), ...authResponses },
      }),
      ctx.access,
    ),
    async (c) => c.json(await listTeams(ctx.sql), 200),
  );
}
