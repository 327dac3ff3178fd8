/**
 * One validation (issue 25): every bound `run` enforces is in the schema, so `config check` and `run` agree, and a
 * configuration value never ends in a stack trace. Every key with bounds (each integer and duration key has them,
 * recorded where the schema builds its parser: `boundsOf`) is walked:
 *  - just below its minimum and just above its maximum: the loader refuses it naming the key, and the built binary's
 *    `config check` and `run` both exit 2 with a line naming the key — no stack trace;
 *  - at its minimum and at its maximum: the loader accepts it and everything `run` builds from the configuration (the
 *    service with its store, engine, ARI connection and FastAGI door; with PostgreSQL the lease and its coordinator)
 *    is constructed without an error.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { ConfigError, resolveConfig } from '../../src/config/load';
import { boundsOf, schema, type Field } from '../../src/config/schema';
import { PgLease } from '../../src/coordination/lease';
import { Coordinator } from '../../src/coordination/coordinator';
import { createLogger } from '../../src/logging/log';
import { Service } from '../../src/app/service';

const ROOT = path.join(__dirname, '../..');
const BIN = path.join(ROOT, 'dist/cli/main.js');
const FIELDS = Object.entries(schema as Record<string, Field>);
const BOUNDED = FIELDS.flatMap(([key, field]) => {
  const b = boundsOf(field);
  return b ? [{ key, type: field.type, ...b }] : [];
});
/** Keys checked against another key: at a bound they need a companion value to pass that check. */
const COMPANIONS: Record<string, (value: string) => Record<string, string>> = {
  'numbers.minDigits': (v) => ({ 'numbers.maxDigits': v }),
  'numbers.maxDigits': (v) => ({ 'numbers.minDigits': v }),
  // A narrow display needs prefixes short enough for a 12-digit number (config check's rule, not a bound).
  'recall.displayWidth': (v): Record<string, string> => (Number(v) < 15 ? { 'recall.labelPrefix': '{"en": [""], "de": [""]}' } : {}),
};

const text = (type: string, n: number) => (type === 'duration' ? `${n}ms` : String(n));
const below = BOUNDED.filter((b) => b.min > (b.type === 'duration' ? 0 : -Infinity)).map((b) => ({ key: b.key, value: text(b.type, b.min - 1) }));
const above = BOUNDED.map((b) => ({ key: b.key, value: text(b.type, b.max + 1) }));
const ENV = { CC_ARI_PASSWORD: 'secret' };

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-bounds-'));
  // The CLI half runs the built binary; build it when the sources are newer (as `npm test` does first).
  const built = fs.existsSync(BIN) ? fs.statSync(BIN).mtimeMs : 0;
  const newest = (dir: string): number =>
    Math.max(0, ...fs.readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).mtimeMs)));
  if (newest(path.join(ROOT, 'src')) > built) {
    const r = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`build failed:\n${r.stdout}${r.stderr}`);
  }
}, 120_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function problemsOf(overrides: Record<string, string>): string[] {
  try {
    resolveConfig({ overrides, env: ENV });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
}

function cli(args: string[]): { code: number | null; stderr: string } {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, TZ: 'UTC', CC_STORE_PATH: path.join(tmp, 'run.db'), ...ENV };
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: tmp, env, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stderr: r.stderr };
}

describe('every bound is in the schema', () => {
  it('every integer and duration key has bounds, and there are keys to walk', () => {
    const unbounded = FIELDS.filter(([, f]) => (f.type === 'integer' || f.type === 'duration') && !boundsOf(f)).map(([k]) => k);
    expect(unbounded).toEqual([]);
    expect(BOUNDED.length).toBeGreaterThan(30);
    expect(below.map((b) => b.key)).toEqual(expect.arrayContaining(['ari.leaseTtl', 'ari.reconnectMax', 'policy.snooze', 'policy.maxAttempts']));
  });

  it.each([...below.map((b) => ['below', b] as const), ...above.map((b) => ['above', b] as const)])('%s the bound, %o is refused naming the key', (_side, b) => {
    const problems = problemsOf({ [b.key]: b.value });
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.every((p) => p.startsWith(`${b.key}: `))).toBe(true);
  });

  it.each(BOUNDED.flatMap((b) => [{ key: b.key, value: text(b.type, b.min) }, { key: b.key, value: text(b.type, b.max) }]))(
    'at the bound, %o is accepted and everything run builds from it is constructed',
    async (b) => {
      const overrides = { [b.key]: b.value, ...(COMPANIONS[b.key]?.(b.value) ?? {}), 'store.path': path.join(tmp, `${b.key}-${b.value}.db`) };
      const resolved = resolveConfig({ overrides, env: ENV });
      const log = createLogger({ format: 'json', stream: new PassThrough() });
      const service = await Service.open({ config: resolved.config, log });
      await service.stop();
      // With PostgreSQL `run` also builds the lease and its coordinator from ari.leaseTtl (no database needed to build them).
      const lease = new PgLease({ query: async () => ({ rows: [] }) } as never, { pbx: 'p', app: 'a', holder: 'h', ttlMs: resolved.config.ari.leaseTtlMs });
      expect(() => new Coordinator({ lease, fenced: { setFence: () => undefined }, log, onActive: () => undefined, onStandby: () => undefined, timers: false })).not.toThrow();
    },
  );
});

describe('`config check` and `run` agree, without a stack trace', () => {
  const sides = [
    ['below the minimum', below],
    ['above the maximum', above],
  ] as const;
  it.each(sides)('every key %s: both exit 2, naming every key', (_side, values) => {
    const sets = values.flatMap((b) => ['--set', `${b.key}=${b.value}`]);
    for (const command of [['config', 'check'], ['run']]) {
      const r = cli([...command, ...sets]);
      expect({ command, code: r.code }).toEqual({ command, code: 2 });
      for (const b of values) expect(r.stderr).toContain(`${b.key}: `);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    }
  }, 60_000);

  it('the issue\'s case: ari.leaseTtl=50ms is refused by both with the same line', () => {
    const check = cli(['config', 'check', '--set', 'ari.leaseTtl=50ms']);
    const run = cli(['run', '--set', 'ari.leaseTtl=50ms']);
    expect([check.code, run.code]).toEqual([2, 2]);
    const line = 'ari.leaseTtl: expected a duration of at least 1s';
    expect(check.stderr).toContain(line);
    expect(run.stderr).toContain(line);
    expect(run.stderr).not.toMatch(/^\s+at /m);
  }, 60_000);
});
