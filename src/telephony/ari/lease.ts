/**
 * One active instance per PBX and app name.
 *
 * Asterisk gives a Stasis app to the newest WebSocket that asks for it, so two instances of this
 * service against one PBX would silently steal each other's calls and both fire callbacks. Before it
 * opens its WebSocket, an instance therefore takes a lease: a global variable on the PBX
 * (`CC_LEASE_<app>` = "<instance id> <epoch ms>"), renewed while it runs. An instance that finds a
 * fresh lease of another instance stands by and checks again; when the active one stops (it clears
 * the lease) or dies (the lease goes stale), the stand-by takes over.
 */

/** Where the lease lives: the PBX's global variables (AriRest `globals`; ari-client's `asterisk` has the same shape). */
export interface GlobalVars {
  getGlobalVar(p: { variable: string }): Promise<{ value: string }>;
  setGlobalVar(p: { variable: string; value: string }): Promise<unknown>;
}

export interface LeaseOptions {
  instanceId: string;
  app: string;
  /** A lease older than this is stale. */
  ttlMs: number;
  clock?: () => number;
  /** True when the holder is known to be gone (a dead process on this host): no need to wait for the TTL. */
  isGone?: (owner: string) => boolean;
}

export interface LeaseHolder {
  owner: string;
  at: number;
}

export function leaseVariable(app: string): string {
  return `CC_LEASE_${app.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

export function parseLease(value: string | undefined): LeaseHolder | undefined {
  const m = /^(\S+) (\d+)$/.exec((value ?? '').trim());
  return m ? { owner: m[1], at: Number(m[2]) } : undefined;
}

export class Lease {
  private readonly clock: () => number;

  constructor(private readonly opts: LeaseOptions) {
    this.clock = opts.clock ?? Date.now;
  }

  async read(vars: GlobalVars): Promise<LeaseHolder | undefined> {
    try {
      const v = await vars.getGlobalVar({ variable: leaseVariable(this.opts.app) });
      return parseLease(v.value);
    } catch {
      return undefined;
    }
  }

  /** The other instance that holds a fresh lease, if any. */
  async heldByOther(vars: GlobalVars): Promise<LeaseHolder | undefined> {
    const lease = await this.read(vars);
    if (!lease || lease.owner === this.opts.instanceId) return undefined;
    if (this.opts.isGone?.(lease.owner)) return undefined;
    return this.clock() - lease.at < this.opts.ttlMs ? lease : undefined;
  }

  /** Takes (or renews) the lease; false when another instance won a race for it. */
  async acquire(vars: GlobalVars, settleMs = 250): Promise<boolean> {
    if (await this.heldByOther(vars)) return false;
    await this.write(vars);
    if (settleMs > 0) await new Promise((r) => setTimeout(r, settleMs));
    const lease = await this.read(vars);
    return lease?.owner === this.opts.instanceId;
  }

  async write(vars: GlobalVars): Promise<void> {
    await vars.setGlobalVar({ variable: leaseVariable(this.opts.app), value: `${this.opts.instanceId} ${this.clock()}` });
  }

  async release(vars: GlobalVars): Promise<void> {
    const lease = await this.read(vars);
    if (lease?.owner === this.opts.instanceId) {
      await vars.setGlobalVar({ variable: leaseVariable(this.opts.app), value: '' }).catch(() => undefined);
    }
  }
}

/** Instance ids are `<host>-<pid>-<random>`; a holder on this host whose process is gone has crashed. */
export function localOwnerGone(host: string): (owner: string) => boolean {
  return (owner) => {
    if (!owner.startsWith(`${host}-`)) return false;
    const pid = Number(owner.slice(host.length + 1).split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
    try {
      process.kill(pid, 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  };
}
