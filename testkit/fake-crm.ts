/**
 * A small fake CRM for the look-up (lookup.url) in the demo and the tests: POST {"number"} → {"name", "company"}.
 *
 * Modes (switch at any time with `mode`):
 *   normal   answers at once from its directory (404 for an unknown number)
 *   slow     answers the same, after `slowMs` (default 5 s)
 *   dead     resets every connection without an answer (a CRM that is down)
 *   garbage  answers 200 with a body that is not a valid answer (by turns: not JSON, a name with quotes and
 *            angle brackets, a name of 500 characters, a body larger than the service reads)
 * Every request is recorded with whether its signature verified (webhook.secret / lookup.secret).
 *
 *   node .tools-dist/testkit/fake-crm.js [--port 8601] [--mode normal] [--secret s]   (prints its URL)
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { verify } from '../src/webhook/payload';

export type CrmMode = 'normal' | 'slow' | 'dead' | 'garbage';

export interface CrmRequest {
  at: number;
  number: string | null;
  signed: boolean;
  mode: CrmMode;
}

export const DEMO_DIRECTORY: Record<string, { name: string; company?: string }> = {
  '2001': { name: 'Anna Schmidt', company: 'Acme GmbH' },
  '2991': { name: 'Bo Li', company: 'Kite Ltd' },
  '2995': { name: 'Eva Berg', company: 'Nordlicht AG' },
  '2992': { name: 'Maximilian Alexander von Hohenberg-Sternfeld', company: 'Lange Namen KG' },
};

export class FakeCrm {
  readonly requests: CrmRequest[] = [];
  /** Answers sent (not counting resets): a test can see that the service did not wait for one. */
  answered = 0;
  mode: CrmMode;
  slowMs: number;
  private garbageTurn = 0;
  private readonly server: http.Server;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(opts: { mode?: CrmMode; slowMs?: number; secret?: string; directory?: Record<string, { name: string; company?: string }> } = {}) {
    this.mode = opts.mode ?? 'normal';
    this.slowMs = opts.slowMs ?? 5000;
    const directory = opts.directory ?? DEMO_DIRECTORY;
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        let number: string | null = null;
        try {
          const parsed = JSON.parse(body.toString('utf8')) as { number?: unknown };
          number = typeof parsed.number === 'string' ? parsed.number : null;
        } catch {
          number = null;
        }
        const signed = opts.secret ? verify(body, opts.secret, req.headers['x-considerate-signature'] as string | undefined, req.headers['x-considerate-timestamp'] as string | undefined) : false;
        const mode = this.mode;
        this.requests.push({ at: Date.now(), number, signed, mode });
        if (mode === 'dead') {
          req.socket.destroy();
          return;
        }
        if (opts.secret && !signed) {
          res.writeHead(401).end();
          return;
        }
        const answer = () => {
          this.answered++;
          if (mode === 'garbage') return this.garbage(res);
          const hit = number ? directory[number] : undefined;
          if (!hit) {
            res.writeHead(404, { 'content-type': 'application/json' }).end('{"name":null}');
            return;
          }
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name: hit.name, company: hit.company ?? null, crmId: `c-${number}` }));
        };
        if (mode === 'slow') {
          const t = setTimeout(() => {
            this.timers.delete(t);
            if (!res.destroyed) answer();
          }, this.slowMs);
          this.timers.add(t);
        } else answer();
      });
    });
  }

  private garbage(res: http.ServerResponse): void {
    const turn = this.garbageTurn++ % 4;
    res.writeHead(200, { 'content-type': 'application/json' });
    if (turn === 0) res.end('<html>oops</html>');
    else if (turn === 1) res.end(JSON.stringify({ name: 'Eve" <sip:evil@x>', company: 'X' }));
    else if (turn === 2) res.end(JSON.stringify({ name: 'A'.repeat(500) }));
    else res.end(JSON.stringify({ name: 'Big', padding: 'x'.repeat(100_000) }));
  }

  async start(port = 0): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    return this.url;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/lookup`;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

if (require.main === module) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const crm = new FakeCrm({ mode: (arg('mode') as CrmMode | undefined) ?? 'normal', secret: arg('secret'), slowMs: arg('slow-ms') ? Number(arg('slow-ms')) : undefined });
  void crm.start(Number(arg('port') ?? 0)).then((url) => {
    process.stdout.write(`fake CRM (${crm.mode}) at ${url}\n`);
  });
  const stop = () => void crm.stop().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
