// Domain errors: thrown below HTTP, turned into problem+json in one place (src/http/problem.ts).

export interface FieldError {
  /** Where: a query parameter, a body field, or `[3].status_code` inside a batch. */
  field: string;
  message: string;
}

/**
 * What was wrong with the input. src/http/problem.ts maps each kind to a status and to the
 * reason counted in observian_events_rejected_total.
 */
export type InputErrorKind =
  /** Unreadable, or a bad or contradictory parameter. */
  | "malformed"
  /** The body did not arrive in time. */
  | "timeout"
  | "too_large"
  /** A content type or encoding that is not read. */
  | "unsupported"
  /** Well-formed, but against the rules (events that fail validation). */
  | "invalid";

/** The client sent something we will not accept; nothing was written. */
export class InvalidInputError extends Error {
  override name = "InvalidInputError";
  constructor(
    readonly errors: FieldError[],
    readonly kind: InputErrorKind = "invalid",
    message = errors.map((e) => `${e.field}: ${e.message}`).join("; "),
  ) {
    super(message);
  }
}

export class NotFoundError extends Error {
  override name = "NotFoundError";
}

/** A dependency (the database) or the server's capacity cannot serve now; the client may retry. */
export class UnavailableError extends Error {
  override name = "UnavailableError";
  constructor(message: string, readonly retryAfterS = 5) {
    super(message);
  }
}

/** The caller went over its rate limit; nothing was done. It may retry after `retryAfterS`. */
export class TooManyRequestsError extends Error {
  override name = "TooManyRequestsError";
  constructor(message: string, readonly retryAfterS: number) {
    super(message);
  }
}

/** The request is well-formed but would leave things in a state that is refused (409). */
export class ConflictError extends Error {
  override name = "ConflictError";
}

export class UnauthorizedError extends Error {
  override name = "UnauthorizedError";
}

export class ForbiddenError extends Error {
  override name = "ForbiddenError";
  /** The fields refused, when the refusal is about parts of the input (events of a batch). */
  constructor(message: string, readonly errors?: FieldError[]) {
    super(message);
  }
}
