// A request whose client went away before its answer: its database queries have been cancelled
// (see src/query/bounded.ts) and nobody will read a response. Answered 499, nginx's "client
// closed request", so that the access log and http_requests_total say what happened instead of
// a 503 that blames the database or a 500.
export const CLIENT_CLOSED_REQUEST = 499;

/**
 * Runs `answer` with the request's signal; if it fails after the client disconnected, the
 * failure (the cancelled query) is the disconnect's doing and becomes a 499. Other failures
 * are rethrown for the error handler.
 */
export async function unlessClientGone<R extends Response>(
  request: Request,
  answer: (signal: AbortSignal) => Promise<R>,
): Promise<R> {
  try {
    return await answer(request.signal);
  } catch (err) {
    if (!request.signal.aborted) throw err;
    // Outside the route's documented (typed) responses on purpose: no client will see it.
    return new Response(null, { status: CLIENT_CLOSED_REQUEST }) as R;
  }
}
