import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { GlobalVars, Lease, leaseVariable, localOwnerGone, parseLease } from '../../src/telephony/ari/lease';

/** The two ARI calls the lease uses, against an in-memory "PBX". */
function fakePbx() {
  const globals = new Map<string, string>();
  const client: GlobalVars = {
    getGlobalVar: async ({ variable }: { variable: string }) => ({ value: globals.get(variable) ?? '' }),
    setGlobalVar: async ({ variable, value }: { variable: string; value: string }) => {
      globals.set(variable, value);
    },
  };
  return { client, globals };
}

describe('lease: one active instance per PBX and app', () => {
  it('the first instance takes it, a second one sees it, a stale one is taken over', async () => {
    let now = 1_000_000;
    const pbx = fakePbx();
    const a = new Lease({ instanceId: 'a', app: 'considerate-callback', ttlMs: 15000, clock: () => now });
    const b = new Lease({ instanceId: 'b', app: 'considerate-callback', ttlMs: 15000, clock: () => now });
    expect(await a.acquire(pbx.client, 0)).toBe(true);
    expect(pbx.globals.get('CC_LEASE_considerate_callback')).toBe('a 1000000');
    expect(await b.acquire(pbx.client, 0)).toBe(false);
    expect(await b.heldByOther(pbx.client)).toEqual({ owner: 'a', at: 1000000 });
    now += 14999;
    expect(await b.acquire(pbx.client, 0)).toBe(false);
    now += 2;
    expect(await b.acquire(pbx.client, 0)).toBe(true);
    expect(await a.heldByOther(pbx.client)).toEqual({ owner: 'b', at: now });
  });

  it('a released lease is free at once; releasing another instance\'s lease does nothing', async () => {
    const pbx = fakePbx();
    const a = new Lease({ instanceId: 'a', app: 'x', ttlMs: 15000 });
    const b = new Lease({ instanceId: 'b', app: 'x', ttlMs: 15000 });
    await a.acquire(pbx.client, 0);
    await b.release(pbx.client);
    expect(await b.heldByOther(pbx.client)).toMatchObject({ owner: 'a' });
    await a.release(pbx.client);
    expect(await b.acquire(pbx.client, 0)).toBe(true);
  });

  it('a crashed holder on this host does not make the next instance wait for the TTL', async () => {
    const pbx = fakePbx();
    const host = os.hostname();
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    pbx.globals.set(leaseVariable('x'), `${host}-${dead}-abc ${Date.now()}`);
    const next = new Lease({ instanceId: `${host}-${process.pid}-def`, app: 'x', ttlMs: 60000, isGone: localOwnerGone(host) });
    expect(await next.acquire(pbx.client, 0)).toBe(true);
    // A live holder (this very process, seen from another id) is respected.
    pbx.globals.set(leaseVariable('x'), `${host}-${process.ppid}-zzz ${Date.now()}`);
    expect(await next.acquire(pbx.client, 0)).toBe(false);
  });

  it('parses only well-formed lease values', () => {
    expect(parseLease('host-1-a 123')).toEqual({ owner: 'host-1-a', at: 123 });
    expect(parseLease('')).toBeUndefined();
    expect(parseLease('garbage')).toBeUndefined();
    expect(leaseVariable('considerate-callback')).toBe('CC_LEASE_considerate_callback');
  });
});
