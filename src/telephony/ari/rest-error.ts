/** The error of the lean ARI REST client (rest.ts), over HTTP or the WebSocket (ws-rest.ts). */
/** An ARI request that failed: HTTP status (0 when no response came) and Asterisk's message. */
export class AriRestError extends Error {
  /** Stable, for callers that branch: `status` says more (0: no response). */
  readonly code = 'ari-rest-failed' as const;

  constructor(
    readonly status: number,
    message: string,
    readonly operation: string,
  ) {
    super(message);
    this.name = 'AriRestError';
  }
}

/**
 * An ARI answer as its request's outcome, over HTTP or the WebSocket alike: the JSON body of a 2xx (`undefined` when
 * empty, or when `discard` says it is not read), else an {@link AriRestError} with the operation, the status and
 * Asterisk's `message` (or `fallback`: the raw text or the reason phrase, as the transport has them).
 */
export function ariAnswer(operation: string, status: number, text: string, fallback: string, discard?: boolean): unknown {
  const ok = status >= 200 && status < 300;
  if (discard && ok) return undefined;
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  if (ok) return body;
  const message = typeof body === 'object' && body && 'message' in body ? String((body as { message: unknown }).message) : fallback || 'no message';
  throw new AriRestError(status, `${operation}: ${status} ${message}`, operation);
}
