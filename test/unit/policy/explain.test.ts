/** "Why is this request waiting, and until when?" from the request and its events alone. */
import { explainRequest, summarizeRequest } from '../../../src/core/policy';
import { busyAgent, MINUTE, SECOND, Sim, T0, Z } from './helpers';

function heldByBackoff(): Sim {
  const s = Sim.device();
  s.free(T0 + 10 * MINUTE);
  s.wake();
  s.key(T0 + 15 * MINUTE + 10 * SECOND, '1');
  s.do(T0 + 15 * MINUTE + 20 * SECOND, { type: 'prospectBusy' });
  s.free(T0 + 17 * MINUTE);
  return s;
}

describe('explainRequest', () => {
  it('answers why and until when, with the history', () => {
    const s = heldByBackoff();
    expect(explainRequest(s.request, s.events)).toBe(
      [
        'Callback r1: PJSIP/1001 → 0301234567 (internal, device watched)',
        'GRACE: grace until 09:52, held until 09:55:10 by back-off after busy attempt 1 (wakes 09:55:10; expires 17:30)',
        "Prospect's time zone: Europe/Berlin (configured calling-hours zone)",
        'Waiting for: the back-off after a busy attempt to end (backoff); next check 2026-03-23 09:55:10 Europe/Berlin (2026-03-23T08:55:10.000Z)',
        'Expires: 2026-03-23 17:30:00 Europe/Berlin (2026-03-23T16:30:00.000Z, maximum age)',
        'Created 2026-03-23 09:30:00; attempts 1, snoozes 0, agent rung 1×',
        'History:',
        '  2026-03-23 09:30:00  created: → WAITING — prospect line busy since 09:30',
        '  2026-03-23 09:40:00  prospect-free: WAITING → GRACE — grace until 09:45',
        '  2026-03-23 09:45:00  due: GRACE → DUE — grace over',
        '  2026-03-23 09:45:00  ring-agent: DUE → RINGING_AGENT — ringing the agent on ccb-r1-1 (attempt 1 of 3)',
        '  2026-03-23 09:45:10  agent-accepted: RINGING_AGENT → CONNECTING — dialling the prospect (attempt 1 of 3)',
        '  2026-03-23 09:45:20  attempt-busy: CONNECTING → WAITING — prospect busy on attempt 1 of 3; prospect line busy since 09:45:20; back-off after busy attempt 1 until 09:55:10',
        '  2026-03-23 09:47:00  prospect-free: WAITING → GRACE — grace until 09:52, held until 09:55:10 by back-off after busy attempt 1',
      ].join('\n'),
    );
  });

  it('limits the history and survives a JSON round trip of request and events', () => {
    const s = heldByBackoff();
    const request = JSON.parse(JSON.stringify(s.request));
    const events = JSON.parse(JSON.stringify(s.events));
    const text = explainRequest(request, events, { historyLimit: 1 });
    expect(text.split('\n').slice(-2)).toEqual([
      'History (last 1 of 7):',
      '  2026-03-23 09:47:00  prospect-free: WAITING → GRACE — grace until 09:52, held until 09:55:10 by back-off after busy attempt 1',
    ]);
    expect(explainRequest(request, events, { historyLimit: 0 })).not.toContain('History');
  });

  it('outside calling hours: says when they open, and that the request was carried over', () => {
    const at = Z('2026-03-27T18:00:00Z'); // Fri 19:00
    const s = Sim.device({ at });
    s.free(at + 10 * MINUTE);
    s.wake(busyAgent());
    expect(summarizeRequest(s.request)).toBe('DUE: outside calling hours, opens Mon 09:00 (wakes Mon 09:00; expires Mon 18:00)');
    const text = explainRequest(s.request);
    expect(text).toContain(
      "Waiting for: the prospect's calling hours to open (calling-hours); next check 2026-03-30 09:00:00 Europe/Berlin (2026-03-30T07:00:00.000Z)",
    );
    expect(text).toContain(
      'Promise: carried over to the next calling day, opening 2026-03-30 09:00:00 Europe/Berlin; the agent was told "we will call you back on the next calling day"',
    );
    expect(text).toContain('Expires: 2026-03-30 18:00:00 Europe/Berlin (2026-03-30T16:00:00.000Z, end of the calling day it was carried over to)');
  });

  it('terminal requests state their outcome', () => {
    const s = Sim.device();
    s.do(T0 + MINUTE, { type: 'cancel', by: 'cli:bob' });
    expect(explainRequest(s.request, [], {})).toBe(
      [
        'Callback r1: PJSIP/1001 → 0301234567 (internal, device watched)',
        'CANCELLED: cancelled by cli:bob',
        "Prospect's time zone: Europe/Berlin (configured calling-hours zone)",
        'Outcome: cancelled',
        'Created 2026-03-23 09:30:00; attempts 0, snoozes 0, agent rung 0×',
      ].join('\n'),
    );
  });

  it('timed requests and refreshes are described', () => {
    const s = Sim.timed();
    s.do(T0 + 5 * MINUTE, { type: 'refresh' });
    const text = explainRequest(s.request, s.events);
    expect(text.split('\n').slice(0, 6)).toEqual([
      'Callback r1: PJSIP/1001 → 0301234567 (external, timed probes)',
      'WAITING: first probe of the external line at 09:45 (wakes 09:45; expires 17:35)',
      "Prospect's time zone: Europe/Berlin (configured calling-hours zone)",
      'Waiting for: the first probe of the external line (probe); next check 2026-03-23 09:45:00 Europe/Berlin (2026-03-23T08:45:00.000Z)',
      'Expires: 2026-03-23 17:35:00 Europe/Berlin (2026-03-23T16:35:00.000Z, maximum age)',
      'Created 2026-03-23 09:30:00, refreshed 1× (last 2026-03-23 09:35:00); attempts 0, snoozes 0, agent rung 0×',
    ]);
  });
});
