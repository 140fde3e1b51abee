// One LogTape configuration for the whole process; modules take loggers by category.
import {
  configure,
  getConsoleSink,
  getLogger,
  getTextFormatter,
  type Logger,
  type LogLevel,
  type LogRecord,
} from "@logtape/logtape";

const ROOT_CATEGORY = "observian";

export function logger(...category: string[]): Logger {
  return getLogger([ROOT_CATEGORY, ...category]);
}

export async function configureLogging(
  opts: { level: LogLevel; format: "json" | "pretty" },
): Promise<void> {
  const formatter = opts.format === "json" ? jsonLine : getTextFormatter({
    timestamp: "date-time",
    value: renderValue,
  });
  await configure({
    reset: true,
    sinks: { console: getConsoleSink({ formatter }) },
    loggers: [
      { category: [ROOT_CATEGORY], lowestLevel: opts.level, sinks: ["console"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
    ],
  });
}

const renderValue = (v: unknown): string =>
  typeof v === "string" ? v : Deno.inspect(v, { colors: false, compact: true, depth: 4 });

/** One JSON object per line with the properties at the top level, as log shippers expect. */
export function jsonLine(record: LogRecord): string {
  let msg = "";
  for (let i = 0; i < record.message.length; i++) {
    msg += i % 2 === 0 ? record.message[i] as string : renderValue(record.message[i]);
  }
  return JSON.stringify({
    time: new Date(record.timestamp).toISOString(),
    level: record.level,
    logger: record.category.join("."),
    msg,
    ...record.properties,
  }, (_k, v) => typeof v === "bigint" ? v.toString() : v) + "\n";
}
