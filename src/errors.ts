// Domain errors: thrown below HTTP, turned into problem+json in one place (src/http/problem.ts).

export interface FieldError {
  /** Where: a query parameter, a body field, or `[3].status_code` inside a batch. */
  field: string;
  message: string;
}

/** The client sent something we will not accept; nothing was written. */
export class InvalidInputError extends Error {
  override name = "InvalidInputError";
  constructor(
    readonly errors: FieldError[],
    readonly status: 400 | 408 | 413 | 415 | 422 = 422,
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

export class UnauthorizedError extends Error {
  override name = "UnauthorizedError";
}

export class ForbiddenError extends Error {
  override name = "ForbiddenError";
}
