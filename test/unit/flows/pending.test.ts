import type { CallbackRequest } from '../../../src/core/policy';
import { PendingFlow, orderPending, type PendingFlowOptions } from '../../../src/flows/pending';
import { FakeCallPort, capturedLog, settle } from '../fake-port';

const OPTS: PendingFlowOptions = {
  prompts: { count: 'sound:cc-pending-count', menu: 'sound:cc-pending-menu', cancelled: 'sound:cc-cancelled', goodbye: 'sound:cc-goodbye' },
  menuTimeoutMs: 8000,
  languages: ['en', 'de'],
  defaultLanguage: 'en',
};

function req(id: string, prospect: string, wakeAt: number | null, createdAt = 0): CallbackRequest {
  return { id, prospect, wakeAt, createdAt, agent: 'PJSIP/1001' } as CallbackRequest;
}

function setup(pending: CallbackRequest[], cancellable = (id: string) => id !== 'gone') {
  const cancelled: string[] = [];
  const { log, lines } = capturedLog();
  const flow = new PendingFlow(
    {
      pendingOf: (agent) => (agent === 'PJSIP/1001' ? pending : []),
      cancel: (id) => {
        if (!cancellable(id)) return false;
        cancelled.push(id);
        return true;
      },
    },
    OPTS,
    log,
  );
  const port = new FakeCallPort('chan-82', { language: 'de' });
  const events = () => lines.filter((l) => typeof l.event === 'string').map((l) => l.event);
  return { flow, port, cancelled, lines, events };
}

describe('the *82 menu over a fake port', () => {
  it('orders pending requests by wake-up, then age', () => {
    expect(orderPending([req('a', '1', null, 1), req('b', '2', 50), req('c', '3', 10), req('d', '4', null, 0)]).map((r) => r.id)).toEqual(['c', 'b', 'd', 'a']);
  });

  it('none pending: "0", then hung up', async () => {
    const { flow, port, events } = setup([]);
    await flow.run(port, ['pending', 'PJSIP/1001']);
    expect(port.calls).toEqual(['setLanguage de', 'answer', 'play sound:cc-pending-count,digits:0', 'hangup normal']);
    expect(events()).toEqual(['pending.asked']);
  });

  it('1 during the digits stops the whole announcement and cancels only the next callback', async () => {
    const { flow, port, cancelled, lines } = setup([req('late', '2002', 500), req('next', '+2001', 100)]);
    port.autoFinish = false;
    const done = flow.run(port, ['pending', 'PJSIP/1001']);
    await settle();
    expect(port.playing).toEqual(['sound:cc-pending-count', 'digits:2', 'digits:2001', 'sound:cc-pending-menu']);
    expect(port.press('1')).toBe('prompt');
    await settle();
    expect(cancelled).toEqual(['next']);
    expect(port.playing).toEqual(['sound:cc-cancelled']);
    port.finishPrompt();
    await done;
    expect(port.calls.at(-1)).toBe('hangup normal');
    expect(lines.find((l) => l.event === 'pending.asked')).toMatchObject({ pending: 2, next: 'next', nextProspect: '+2001', agent: 'PJSIP/1001' });
    expect(lines.find((l) => l.event === 'pending.cancelled')).toMatchObject({ requestId: 'next', key: '1' });
  });

  it('2 after the announcement cancels all; one that changed meanwhile is reported, not counted', async () => {
    const { flow, port, cancelled, events } = setup([req('a', '2001', 1), req('gone', '2002', 2), req('b', '2003', 3)]);
    const done = flow.run(port, ['pending', 'PJSIP/1001']);
    await settle();
    expect(port.calls).toContain('waitKey 8000 [12]');
    expect(port.press('2')).toBe('wait');
    await done;
    expect(cancelled).toEqual(['a', 'b']);
    expect(events()).toEqual(['pending.asked', 'pending.cancelled', 'pending.cancel_failed', 'pending.cancelled']);
    expect(port.calls).toContain('play sound:cc-cancelled');
  });

  it('no key, or a hang-up, cancels nothing', async () => {
    const a = setup([req('a', '2001', 1)]);
    const doneA = a.flow.run(a.port, ['pending', 'PJSIP/1001']);
    await settle();
    a.port.expireWait();
    await doneA;
    expect(a.cancelled).toEqual([]);
    expect(a.lines.find((l) => l.event === 'pending.no_choice')).toMatchObject({ key: 'none' });

    const b = setup([req('a', '2001', 1)]);
    b.port.autoFinish = false;
    const doneB = b.flow.run(b.port, ['pending', 'PJSIP/1001']);
    await settle();
    b.port.hangUp();
    await doneB;
    expect(b.cancelled).toEqual([]);
    expect(b.port.calls).not.toContain('hangup normal');
  });

  it('a bad agent device from the dialplan is refused: hung up, nothing read out', async () => {
    const { flow, port, lines } = setup([req('a', '2001', 1)]);
    await flow.run(port, ['pending', 'PJSIP/1001&PJSIP/evil']);
    expect(port.calls).toEqual(['hangup normal']);
    expect(lines.find((l) => l.event === 'pending.refused')).toMatchObject({ level: 'warn' });
  });
});
