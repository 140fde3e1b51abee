// Reads a JSON or NDJSON request body within a byte limit, refusing what it cannot take.
import { InvalidInputError } from "../errors.ts";

export type BodyFormat = "json" | "ndjson";

const NDJSON_TYPES = ["application/x-ndjson", "application/ndjson", "application/jsonl"];

/** How the body is compressed, as log shippers send it (Content-Encoding). */
export type BodyEncoding = "identity" | "gzip" | "deflate";

export function bodyEncoding(contentEncoding: string | undefined): BodyEncoding {
  const enc = (contentEncoding ?? "").trim().toLowerCase();
  if (enc === "" || enc === "identity") return "identity";
  if (enc === "gzip" || enc === "x-gzip") return "gzip";
  if (enc === "deflate") return "deflate";
  throw new InvalidInputError(
    [{ field: "content-encoding", message: `must be gzip, deflate or identity, not "${enc}"` }],
    415,
  );
}

export function bodyFormat(contentType: string | undefined): BodyFormat {
  const type = (contentType ?? "").split(";")[0].trim().toLowerCase();
  if (type === "application/json" || type.endsWith("+json")) return "json";
  if (NDJSON_TYPES.includes(type)) return "ndjson";
  throw new InvalidInputError(
    [{
      field: "content-type",
      message: `must be application/json or application/x-ndjson, not "${type || "(none)"}"`,
    }],
    415,
  );
}

/** The Content-Length the client declared; NaN for a chunked body. */
const declaredLength = (req: Request) => Number(req.headers.get("content-length") ?? NaN);

/**
 * The most memory readText() can need for this body: its declared length, or `maxBytes` when
 * it is chunked or compressed (it may grow to the limit), or 0 when it is declared too large
 * (refused with 413 before anything is read).
 */
export function bodyBound(req: Request, maxBytes: number, encoding: BodyEncoding): number {
  const declared = declaredLength(req);
  if (declared > maxBytes) return 0;
  return declared >= 0 && encoding === "identity" ? declared : maxBytes;
}

/**
 * The body as text, or 413 as soon as it passes `maxBytes` (chunked bodies included). A
 * compressed body is limited by its decompressed size, checked as it inflates, so a small
 * body that expands without end (a zip bomb) is refused early.
 */
export async function readText(
  req: Request,
  maxBytes: number,
  encoding: BodyEncoding = "identity",
): Promise<string> {
  const tooLarge = () =>
    new InvalidInputError(
      [{
        field: "(body)",
        message: `larger than the limit of ${maxBytes} bytes` +
          (encoding === "identity" ? "" : " once decompressed"),
      }],
      413,
    );
  const declared = declaredLength(req);
  if (declared > maxBytes) throw tooLarge();
  if (!req.body) return "";
  // A declared length is enforced by the HTTP layer, so the body can be taken in one read,
  // far cheaper than the chunk loop that chunked bodies need.
  if (declared >= 0 && encoding === "identity") return utf8(await readAll(req));
  const stream = encoding === "identity"
    ? req.body
    : req.body.pipeThrough(new DecompressionStream(encoding));
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = stream.getReader();
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch {
      throw encoding === "identity" ? cutOff() : notDecodable(encoding);
    }
    const { done, value } = chunk;
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    all.set(c, offset);
    offset += c.byteLength;
  }
  return utf8(all);
}

async function readAll(req: Request): Promise<Uint8Array> {
  try {
    return await req.bytes();
  } catch {
    throw cutOff();
  }
}

// Stateless between calls (no `stream: true`), so one decoder serves every request.
const decoder = new TextDecoder("utf-8", { fatal: true });

function utf8(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new InvalidInputError([{ field: "(body)", message: "is not valid UTF-8" }], 400);
  }
}

// The client went away (or the connection broke) mid-body: nothing was stored.
const cutOff = () =>
  new InvalidInputError([{ field: "(body)", message: "could not be read to the end" }], 400);

const notDecodable = (encoding: BodyEncoding) =>
  new InvalidInputError([{
    field: "(body)",
    message: `is not valid ${encoding} data, or could not be read to the end`,
  }], 400);

/** Decodes JSON (one value) or NDJSON (one value per non-blank line); 400 names the spot. */
export function decodeBody(text: string, format: BodyFormat): unknown {
  if (format === "json") {
    if (!text.trim()) throw malformed("(body)", "is empty");
    try {
      return JSON.parse(text);
    } catch (err) {
      throw malformed("(body)", `is not valid JSON: ${(err as Error).message}`);
    }
  }
  const values: unknown[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    try {
      values.push(JSON.parse(line));
    } catch (err) {
      throw malformed(`line ${i + 1}`, `is not valid JSON: ${(err as Error).message}`);
    }
  }
  return values;
}

const malformed = (field: string, message: string) =>
  new InvalidInputError([{ field, message }], 400);
