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
