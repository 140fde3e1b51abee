// How tests and benchmarks run the server: `deno run` with the flags of `deno task start`
// (deno.json), so that what they measure and check is the process as deployed; all but
// --env-file: they set the server's environment themselves, and a developer's .env must not
// change what they see.
const ROOT = new URL("../../", import.meta.url);

/** The flags between `deno run` and `src/main.ts` in the start task. */
export function startTaskFlags(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT)));
  const task = String(config.tasks?.start ?? "").trim().split(/\s+/);
  if (task[0] !== "deno" || task[1] !== "run" || task.at(-1) !== "src/main.ts") {
    throw new Error(`unexpected start task in deno.json: ${task.join(" ")}`);
  }
  return task.slice(2, -1);
}

/** Arguments for `Deno.execPath()` that start the server as `deno task start` does. */
export function mainArgs(): string[] {
  return [
    "run",
    ...startTaskFlags().filter((flag) => !flag.startsWith("--env-file")),
    `--config=${new URL("deno.json", ROOT).pathname}`,
    new URL("src/main.ts", ROOT).pathname,
  ];
}
