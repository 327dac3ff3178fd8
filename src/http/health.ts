/**
 * The operations routes on the HTTP listener:
 * - `/healthz`: the process lives and its event loop answers (always 200 while it does; no token).
 * - `/readyz`: 200 when the service can take calls: ARI connected, the one-active-instance lease held,
 *   the store writable; otherwise 503. The JSON body names each check and why it failed, and says
 *   `"standby": true` while another instance serves the PBX and this one waits to take over (not ready by
 *   design; the docker demo's healthcheck counts a stand-by with a writable store as healthy).
 * - `/metrics`: Prometheus text format (src/http/metrics.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { HttpServer, send } from './server';
import type { ServiceMetrics } from './metrics';

export type Check = { ok: true; detail?: string } | { ok: false; detail: string };

export interface Readiness {
  ari(): Check | Promise<Check>;
  lease(): Check | Promise<Check>;
  store(): Check | Promise<Check>;
  /** True while another instance serves the PBX and this one stands by. */
  standby?(): boolean;
}

export async function readiness(r: Readiness): Promise<{ ready: boolean; standby: boolean; checks: Record<'ari' | 'lease' | 'store', Check> }> {
  const safe = async (f: () => Check | Promise<Check>): Promise<Check> => {
    try {
      return await f();
    } catch (err) {
      return { ok: false, detail: (err as Error).message };
    }
  };
  const [ari, lease, store] = await Promise.all([safe(() => r.ari()), safe(() => r.lease()), safe(() => r.store())]);
  const checks = { ari, lease, store };
  const ready = Object.values(checks).every((c) => c.ok);
  return { ready, standby: !ready && (r.standby?.() ?? false), checks };
}

export function addHealthRoutes(server: HttpServer, r: Readiness, metrics: ServiceMetrics): void {
  server.route({
    path: '/healthz',
    public: true,
    budget: 'probe',
    handle: (_req, res) => send(res, 200, '{"status":"ok"}\n', 'application/json'),
  });
  server.route({
    path: '/readyz',
    budget: 'probe',
    handle: async (_req, res) => {
      const result = await readiness(r);
      send(res, result.ready ? 200 : 503, `${JSON.stringify(result)}\n`, 'application/json');
    },
  });
  server.route({
    path: '/metrics',
    budget: 'probe',
    handle: async (_req, res) => send(res, 200, await metrics.text(), metrics.contentType()),
  });
}

/** The package's version, from package.json next to dist/ (or src/). */
export function packageVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
