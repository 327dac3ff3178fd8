/**
 * Errors of the read models, with a stable `code` a caller branches on (the CLI maps it to an exit code,
 * the web page to an HTTP status); the message is meant for the user and names what was wrong.
 */
export type ViewErrorCode = 'invalid-input';

export class InputError extends Error {
  readonly code: ViewErrorCode = 'invalid-input';

  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}
