/**
 * The service with the SQLite store's own WAL sync (CC_SQLITE_SYNC=thread, the bench's A/B mode): when the
 * fdatasync of the WAL fails, the opt-in that waited for it fails, the service logs `store.sync_failed` naming
 * the store's file and the errno code, and every later write is refused rather than acknowledged on a WAL the
 * kernel may have dropped. The failure is injected where the store calls the operating system (fs.fdatasync).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../../src/config/load';
import { Service } from '../../src/app/service';
import { captureLog } from '../../testkit/log';

let tmp: string;
const saved = process.env.CC_SQLITE_SYNC;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-svc-sync-'));
  process.env.CC_SQLITE_SYNC = 'thread';
});
afterEach(() => {
  jest.restoreAllMocks();
  if (saved === undefined) delete process.env.CC_SQLITE_SYNC;
  else process.env.CC_SQLITE_SYNC = saved;
  fs.rmSync(tmp, { recursive: true, force: true });
});

const optIn = (service: Service, prospect: string) =>
  service.engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'Agent', number: '1001' }, prospect, language: 'en', channelId: `ch-${prospect}` });

describe('the service when the WAL cannot be synced (sync: thread)', () => {
  it('logs store.sync_failed with the file and errno code, fails the waiting opt-in and refuses later writes', async () => {
    const file = path.join(tmp, 'callbacks.db');
    const { config } = resolveConfig({ overrides: { 'store.path': file }, env: { CC_ARI_PASSWORD: 'secret' } });
    const { log, lines } = captureLog();
    const service = await Service.open({ config, log });
    try {
      const first = await optIn(service, '2001');
      expect(first).toBeDefined();
      expect(lines.some((l) => l.event === 'store.sync_failed')).toBe(false);

      jest.spyOn(fs, 'fdatasync').mockImplementation(((_fd: number, cb: (err: NodeJS.ErrnoException | null) => void) =>
        cb(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO', errno: -5 }))) as typeof fs.fdatasync);
      await expect(optIn(service, '2002')).rejects.toThrow(/EIO/);
      const failed = lines.filter((l) => l.event === 'store.sync_failed');
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ level: 'error', file, code: 'EIO' });

      jest.restoreAllMocks(); // the disk is fine again: the store still refuses until a restart
      await expect(optIn(service, '2003')).rejects.toThrow(/EIO/);
      expect(lines.filter((l) => l.event === 'store.sync_failed')).toHaveLength(1);
    } finally {
      await service.stop().catch(() => undefined);
    }
  });
});
