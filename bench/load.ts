/**
 * Sustained load: SIPp (agent 1001, uac-busy-pound.xml) calls the always-busy simulator 2991 at
 * increasing rates (`-r`, `-m rate×seconds`) against the real service: busy → offer → `#` → stored →
 * confirmation → BYE. All calls are the same agent/prospect pair, so after the first each opt-in is a
 * refresh (an UPDATE + event in one transaction), not an insert. A call fails when SIPp counts it failed
 * (no 200 OK: 486 because the offer was not made, a timeout, no BYE within 30 s).
 */
import path from 'node:path';
import { runSipp } from '../src/demo/sipp';
import { ROOT, log, sleep } from './common';
import { Target } from './offer';

function lastCount(output: string, label: string): number | undefined {
  const lines = output.split('\n').filter((l) => l.includes(label));
  const m = lines.pop()?.match(/(\d+)\s*$/);
  return m ? Number(m[1]) : undefined;
}

export async function loadBench(opts: { rates: number[]; seconds: number }): Promise<Record<string, unknown>> {
  const target = new Target('app');
  await target.start();
  const steps: Array<Record<string, unknown>> = [];
  let highestClean: number | undefined;
  let breaksAt: number | undefined;
  let breakReason: string | undefined;
  try {
    for (const rate of opts.rates) {
      const calls = rate * opts.seconds;
      log(`load: ${rate} calls/s × ${opts.seconds} s (${calls} calls)…`);
      const before = target.logs.length;
      const r = await runSipp({
        scenario: path.join(ROOT, 'src/demo/scenarios/uac-busy-pound.xml'),
        port: 5071,
        mediaPort: 6071,
        service: '2991',
        keys: { agent: '1001' },
        auth: { user: '1001', password: 'agent1001' },
        calls,
        timeoutMs: (opts.seconds + 60) * 1000,
        extraArgs: ['-r', String(rate), '-l', String(rate * 40)],
        label: `load ${rate}/s`,
      });
      const logs = target.logs.slice(before);
      const stored = logs.filter((l) => l.message === 'callback requested' || l.message === 'callback request refreshed').length;
      const successful = lastCount(r.output, 'Successful call') ?? NaN;
      const failed = lastCount(r.output, 'Failed call') ?? NaN;
      const errorLines = logs.filter((l) => l.level === 'error' || l.level === 'warn').map((l) => l.message);
      const note = failed > 0 || r.code !== 0 ? `sipp exit ${r.code}; ${[...new Set(errorLines)].slice(0, 3).join('; ') || r.errors.split('\n').filter(Boolean).slice(-2).join(' / ')}` : undefined;
      steps.push({ rate, seconds: opts.seconds, calls, successful, failed, stored, code: r.code, durationMs: r.durationMs, note });
      if (failed === 0 && r.code === 0 && successful === calls) highestClean = rate;
      else {
        breaksAt = rate;
        breakReason = note ?? `successful ${successful}/${calls}`;
        break;
      }
      await sleep(3000);
    }
  } finally {
    await target.stop();
  }
  return { steps, highestClean, breaksAt, breakReason, pair: 'PJSIP/1001 → 2991 for every call (refresh after the first)' };
}
