// Aborted on Ctrl-C / SIGTERM so that long-running children (wrk) stop with the benchmark.
export const interrupt = new AbortController();
