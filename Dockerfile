# Observian API image. Build context: the repository root (`docker compose up --build`).
# Pinned by tag: keep in step with DENO_VERSION in .ci/run (tests/deploy_test.ts checks).
FROM denoland/deno:2.9.6

ENV DENO_NO_UPDATE_CHECK=1 \
    DENO_NO_PROMPT=1 \
    PORT=8000 \
    HOST=0.0.0.0 \
    LOG_FORMAT=json

WORKDIR /app
# The image's unprivileged `deno` user owns only what Deno writes (node_modules here, and
# DENO_DIR): the application files stay root-owned and read-only to the process.
RUN chown deno:deno /app
USER deno

# Dependencies first, exactly as locked, so this layer is reused until deno.json/deno.lock
# change.
COPY deno.json deno.lock ./
RUN deno install --frozen

COPY sql/ ./sql/
COPY scripts/ ./scripts/
COPY src/ ./src/
# Nothing left to fetch at start-up.
RUN deno cache --frozen src/main.ts scripts/migrate.ts
# The start task reads .env (--env-file); the container's settings come from its environment,
# and an empty file spares every start Deno's warning about a missing one.
RUN touch .env

EXPOSE 8000

# The image has no curl: a few lines of Deno do the same. /health does no database work, so a
# slow database makes the container unready (depends_on) but never restarts it.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["deno", "eval", "--no-config", "try { const r = await fetch(`http://127.0.0.1:${Deno.env.get('PORT') || 8000}/health`, { signal: AbortSignal.timeout(4000) }); await r.body?.cancel(); Deno.exit(r.ok ? 0 : 1); } catch (e) { console.error(String(e)); Deno.exit(1); }"]

# DATABASE_URL comes from the environment (compose sets it); SIGTERM drains requests.
CMD ["deno", "task", "start"]
