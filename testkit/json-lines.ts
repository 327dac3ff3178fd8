import readline from 'node:readline';

/**
 * Reads a child process's stdout as JSON lines (the service's log format); a line that is not JSON comes
 * as `{ level: 'raw', message }`. `tee` gets every line (with its newline) as it is, e.g. for a log file.
 */
export function onJsonLines(stream: NodeJS.ReadableStream | null | undefined, each: (line: Record<string, unknown> & { message: string }) => void, tee?: (chunk: string) => void): void {
  if (!stream) return;
  readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
    tee?.(`${line}\n`);
    try {
      each(JSON.parse(line) as Record<string, unknown> & { message: string });
    } catch {
      each({ level: 'raw', message: line });
    }
  });
}
