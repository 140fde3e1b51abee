// Lookups for the external tools some tests drive (promtool, prometheus, docker-compose).

/** Absolute path of an executable on PATH, or undefined. */
export function onPath(cmd: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    try {
      const info = Deno.statSync(`${dir}/${cmd}`);
      if (info.isFile && (info.mode ?? 0o111) & 0o111) return `${dir}/${cmd}`;
    } catch { /* not here */ }
  }
  return undefined;
}
