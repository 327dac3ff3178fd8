/** Reads a child process's stdout as JSON lines (the service's log format); a line that is not JSON comes as `{ level: 'raw', message }`. */
export function onJsonLines(stream: NodeJS.ReadableStream | null | undefined, each: (line: Record<string, unknown> & { message: string }) => void, tee?: (chunk: string) => void): void {
  let buf = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => {
    tee?.(chunk);
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        each(JSON.parse(line) as Record<string, unknown> & { message: string });
      } catch {
        each({ level: 'raw', message: line });
      }
    }
  });
}
