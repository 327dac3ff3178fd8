import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RequestRecord, StoreError } from '../../src/store/contract';
import { SqliteStore } from '../../src/store/sqlite';

interface Rec extends RequestRecord {
  note?: string;
}

function tmpFile(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cc-store-')), 'callbacks.db');
}

function rec(id: string, agent = 'PJSIP/1001', prospect = '2001', now = 1000): Rec {
  return { id, agent, prospect, state: 'WAITING', createdAt: now, updatedAt: now, wakeAt: now + 300000 };
}

const create = (r: Rec) => () => ({ request: r, events: [{ requestId: r.id, at: r.createdAt, type: 'requested', to: 'WAITING' }] });
const refresh = (now: number) => (e: Rec) => ({ request: { ...e, updatedAt: now, note: 'refreshed' }, events: [{ requestId: e.id, at: now, type: 'refreshed' }] });

describe('SqliteStore', () => {
  it('creates, then refreshes the pending request of the same agent and prospect', async () => {
    const file = tmpFile();
    const store = SqliteStore.open<Rec>(file);
    expect(await store.createOrRefresh('PJSIP/1001', '2001', 10, create(rec('a')), refresh(2000))).toMatchObject({ result: 'created' });
    const second = await store.createOrRefresh('PJSIP/1001', '2001', 10, create(rec('b')), refresh(2000));
    expect(second).toMatchObject({ result: 'refreshed', request: { id: 'a', updatedAt: 2000, note: 'refreshed' } });
    expect((await store.list()).map((r) => r.id)).toEqual(['a']);
    expect((await store.events('a')).map((e) => e.type)).toEqual(['requested', 'refreshed']);
    await store.close();
    // Durable: a fresh handle (a restarted service) sees the same.
    const again = SqliteStore.open<Rec>(file, { readonly: true });
    expect(await again.get('a')).toMatchObject({ version: 2, request: { note: 'refreshed' } });
    await again.close();
  });

  it('refuses beyond maxPending per agent, counting only pending requests', async () => {
    const store = SqliteStore.open<Rec>(':memory:');
    for (const p of ['2001', '2002']) await store.createOrRefresh('PJSIP/1001', p, 2, create(rec(`r${p}`, 'PJSIP/1001', p)), refresh(0));
    expect(await store.createOrRefresh('PJSIP/1001', '2003', 2, create(rec('r2003', 'PJSIP/1001', '2003')), refresh(0))).toEqual({ result: 'full', pending: 2 });
    // Another agent is not affected.
    expect((await store.createOrRefresh('PJSIP/1002', '2003', 2, create(rec('x', 'PJSIP/1002', '2003')), refresh(0))).result).toBe('created');
    // A finished request frees a place, and a new request for the same prospect may be created.
    const done = (await store.get('r2001'))!;
    expect(await store.transition({ ...done.request, state: 'COMPLETED', wakeAt: null }, done.version, [])).toBe(2);
    expect((await store.createOrRefresh('PJSIP/1001', '2001', 2, create(rec('again', 'PJSIP/1001', '2001')), refresh(0))).result).toBe('created');
    expect(await store.countPending('PJSIP/1001')).toBe(2);
  });

  it('a transition with a stale version is refused and writes nothing', async () => {
    const store = SqliteStore.open<Rec>(':memory:');
    await store.createOrRefresh('PJSIP/1001', '2001', 10, create(rec('a')), refresh(0));
    const v = (await store.get('a'))!;
    expect(await store.transition({ ...v.request, state: 'GRACE' }, v.version, [{ requestId: 'a', at: 5, type: 'grace' }])).toBe(2);
    expect(await store.transition({ ...v.request, state: 'DUE' }, v.version, [{ requestId: 'a', at: 6, type: 'due' }])).toBeUndefined();
    expect((await store.get('a'))!.request.state).toBe('GRACE');
    expect((await store.events('a')).map((e) => e.type)).toEqual(['requested', 'grace']);
  });

  it('answers due() and nextWake() from the wake_at index', async () => {
    const store = SqliteStore.open<Rec>(':memory:');
    await store.createOrRefresh('PJSIP/1001', '2001', 10, create({ ...rec('a'), wakeAt: 500 }), refresh(0));
    await store.createOrRefresh('PJSIP/1001', '2002', 10, create({ ...rec('b', 'PJSIP/1001', '2002'), wakeAt: 100 }), refresh(0));
    await store.createOrRefresh('PJSIP/1001', '2003', 10, create({ ...rec('c', 'PJSIP/1001', '2003'), wakeAt: null }), refresh(0));
    expect(await store.nextWake()).toBe(100);
    expect((await store.due(400)).map((v) => v.request.id)).toEqual(['b']);
    expect((await store.due(1000)).map((v) => v.request.id)).toEqual(['b', 'a']);
    expect(await store.pending()).toHaveLength(3);
  });

  it('a file that is not a database gives a StoreError naming the file', async () => {
    const file = tmpFile();
    fs.writeFileSync(file, 'this is not sqlite, just text that someone left here '.repeat(100));
    expect(() => SqliteStore.open(file)).toThrow(StoreError);
    expect(() => SqliteStore.open(file)).toThrow(new RegExp(`cannot open callback store ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: file is not a database`));
  });

  it('a truncated database gives a StoreError, not a crash', async () => {
    const file = tmpFile();
    const store = SqliteStore.open<Rec>(file);
    for (let i = 0; i < 200; i++) await store.createOrRefresh('PJSIP/1001', `20${String(i).padStart(3, '0')}`, 1000, create(rec(`id${i}`, 'PJSIP/1001', `20${String(i).padStart(3, '0')}`)), refresh(0));
    await store.close();
    const size = fs.statSync(file).size;
    fs.truncateSync(file, Math.floor(size / 3));
    expect(() => SqliteStore.open(file)).toThrow(StoreError);
  });

  it('a read-only data directory is reported clearly', async () => {
    if (process.getuid?.() === 0) {
      // root ignores directory permissions; use a path below a regular file instead
      const blocker = tmpFile();
      fs.writeFileSync(blocker, 'x');
      expect(() => SqliteStore.open(path.join(blocker, 'sub', 'cb.db'))).toThrow(/callback store directory .* is not writable/);
      return;
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-ro-'));
    fs.chmodSync(dir, 0o555);
    expect(() => SqliteStore.open(path.join(dir, 'cb.db'))).toThrow(/is not writable/);
  });

  it('opening read-only a store that does not exist says so', async () => {
    expect(() => SqliteStore.open(path.join(os.tmpdir(), 'no-such-dir-cc', 'x.db'), { readonly: true })).toThrow(/does not exist/);
  });
});
