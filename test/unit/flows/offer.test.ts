import { DialPolicyError } from '../../../src/core/dial-policy';
import type { OptInResult } from '../../../src/engine';
import { OfferDriver, type OfferOptions, type OfferPreparation, type OfferRequestInput } from '../../../src/flows/offer';
import { FakeCallPort, capturedLog, settle } from '../fake-port';

const OPTS: OfferOptions = {
  keyTimeoutMs: 6000,
  closingTimeoutMs: 15000,
  languages: ['en', 'de'],
  defaultLanguage: 'en',
  prompts: { offer: 'sound:cc-offer', confirm: 'sound:cc-confirm', goodbye: 'sound:cc-goodbye', full: 'sound:cc-full', error: 'sound:cc-error' },
  numbers: { minDigits: 2, maxDigits: 20 },
};
const ARGS = ['offer', '2001', 'PJSIP/1001', '17'];

function setup(result: OptInResult | Error = { result: 'created', requestId: 'r1' }) {
  const stored: OfferRequestInput[] = [];
  const { log, lines } = capturedLog();
  const driver = new OfferDriver(
    {
      optIn: (input) => {
        if (result instanceof Error) throw result;
        const { marks, ...rest } = input;
        if (marks) marks.committed = performance.now(); // a store that marks what it knows (the engine marks every step)
        stored.push(rest);
        return result;
      },
    },
    OPTS,
    log,
  );
  const port = new FakeCallPort('1712.42', { language: 'en', caller: { name: 'Agent "1001"', number: '1001' } });
  const events = () => lines.filter((l) => typeof l.event === 'string').map((l) => l.event);
  return { driver, port, stored, lines, events };
}

describe('the offer driver over a fake port', () => {
  it('# during the prompt: stored once before the confirmation, then hung up', async () => {
    const { driver, port, stored, lines, events } = setup();
    port.autoFinish = false;
    const done = driver.run(port, ARGS, 'ari');
    await settle();
    expect(port.playing).toEqual(['sound:cc-offer']);
    expect(port.press('#')).toBe('prompt');
    await settle();
    // Stored while the confirmation has not even started.
    expect(stored).toEqual([{ agent: 'PJSIP/1001', agentCallerId: { name: 'Agent 1001', number: '1001' }, prospect: '2001', language: 'en', channelId: '1712.42' }]);
    expect(port.playing).toEqual(['sound:cc-confirm']);
    port.finishPrompt();
    expect(await done).toBe('requested');
    expect(port.calls).toEqual(['setLanguage en', 'answer', 'play sound:cc-offer [#0123456789*]', 'stop', 'play sound:cc-confirm', 'hangup normal']);
    expect(events()).toEqual(['offer.started', 'offer.prompt_playing', 'offer.key', 'offer.opted_in', 'offer.prompt_playing', 'offer.timing', 'offer.prompt_finished', 'offer.ended']);
    const opted = lines.find((l) => l.event === 'offer.opted_in')!;
    expect(opted).toMatchObject({ requestId: 'r1', result: 'created', entry: 'ari', channelId: '1712.42', agent: 'PJSIP/1001', prospect: '2001' });
    expect(typeof opted.keyToDurableMs).toBe('number');
    // The opt-in's steps for the bench, logged once the confirmation is requested (offer.timing): the flow's
    // own steps and what the store marked; a step nobody marked is absent, not made up.
    const timing = lines.find((l) => l.event === 'offer.timing')!;
    expect(timing).toMatchObject({ prompt: 'confirm', channelId: '1712.42' });
    for (const k of ['keyToStore', 'handBack', 'confirm', 'keyToConfirm']) expect(timing[k]).toBeGreaterThanOrEqual(0);
    expect(timing.queued).toBeUndefined();
    expect(timing.keyToConfirm as number).toBeGreaterThanOrEqual(timing.keyToStore as number);
    expect(lines.find((l) => l.event === 'offer.ended')).toMatchObject({ outcome: 'requested', key: '#', requestId: 'r1' });
  });

  it('# after the prompt: waits for the key with the key timeout, then stores', async () => {
    const { driver, port, stored } = setup({ result: 'refreshed', requestId: 'r9' });
    const done = driver.run(port, ARGS, 'agi');
    await settle();
    expect(port.waiting).toBe(true);
    expect(port.calls[3]).toMatch(/^waitKey \d+$/);
    expect(Number(port.calls[3].split(' ')[1])).toBeLessThanOrEqual(6000);
    port.press('#');
    expect(await done).toBe('refreshed');
    expect(stored).toHaveLength(1);
  });

  it('no key: goodbye, nothing stored', async () => {
    const { driver, port, stored, events } = setup();
    const done = driver.run(port, ARGS, 'ari');
    await settle();
    port.expireWait();
    expect(await done).toBe('timeout');
    expect(stored).toEqual([]);
    expect(port.calls.slice(-2)).toEqual(['play sound:cc-goodbye', 'hangup normal']);
    expect(events()).not.toContain('offer.opted_in');
  });

  it('any other key declines: goodbye, nothing stored', async () => {
    const { driver, port, stored } = setup();
    port.autoFinish = false;
    const done = driver.run(port, ARGS, 'ari');
    await settle();
    port.press('5');
    await settle();
    port.finishPrompt();
    expect(await done).toBe('declined');
    expect(stored).toEqual([]);
  });

  it('a hang-up during the prompt ends the offer without storing or hanging up', async () => {
    const { driver, port, stored } = setup();
    port.autoFinish = false;
    const done = driver.run(port, ARGS, 'ari');
    await settle();
    port.hangUp(16);
    expect(await done).toBe('hangup');
    expect(stored).toEqual([]);
    expect(port.calls).not.toContain('hangup normal');
  });

  it('a full agent hears cc-full; a failing store is told as an error; neither crashes', async () => {
    const full = setup({ result: 'full', pending: 10 });
    const a = full.driver.run(full.port, ARGS, 'ari');
    await settle();
    full.port.press('#');
    expect(await a).toBe('full');
    expect(full.port.calls).toContain('play sound:cc-full');
    expect(full.events()).toContain('offer.full');

    const failing = setup(new Error('disk I/O error'));
    const b = failing.driver.run(failing.port, ARGS, 'ari');
    await settle();
    failing.port.press('#');
    expect(await b).toBe('store-failed');
    expect(failing.port.calls).toContain('play sound:cc-error');
    expect(failing.lines.find((l) => l.event === 'offer.store_failed')).toMatchObject({ level: 'error', error: 'disk I/O error' });
  });

  it('an opt-in refused by the dial policy plays the error prompt, stores nothing and is not logged as a store failure', async () => {
    const refused = setup(new DialPolicyError('prospect number "0900123" matches denied prefix 0900 (dial.prospectDeny)'));
    const run = refused.driver.run(refused.port, ['offer', '0900123', 'PJSIP/1001'], 'agi');
    await settle();
    refused.port.press('#');
    expect(await run).toBe('store-failed');
    expect(refused.stored).toEqual([]);
    expect(refused.port.calls).toContain('play sound:cc-error');
    expect(refused.events()).not.toContain('offer.store_failed');
    expect(refused.events()).not.toContain('offer.opted_in');
  });

  it.each([
    [['offer', '123&PJSIP/evil', 'PJSIP/1001'], 'prospect'],
    [['offer', '2001', 'PJSIP/1001&PJSIP/evil'], 'agent'],
    [['offer'], 'nothing'],
  ])('refuses bad input from the dialplan (%j): the port declines the call, nothing is played or stored', async (args) => {
    const { driver, port, stored, lines } = setup();
    expect(await driver.run(port, args, 'ari')).toBeUndefined();
    expect(port.calls).toEqual(['refuse']);
    expect(stored).toEqual([]);
    expect(lines.find((l) => l.event === 'offer.refused')).toMatchObject({ level: 'warn', entry: 'ari' });
  });

  it('a German channel keeps its language; an unsupported one gets the default', async () => {
    const de = setup();
    de.port.language = 'de';
    const a = de.driver.run(de.port, ARGS, 'ari');
    await settle();
    de.port.press('#');
    await a;
    expect(de.stored[0].language).toBe('de');
    const fr = setup();
    fr.port.language = 'fr';
    const b = fr.driver.run(fr.port, ARGS, 'ari');
    await settle();
    fr.port.expireWait();
    await b;
    expect(fr.port.calls[0]).toBe('setLanguage en');
  });

  it('a missing sound file is an error line and counts as played', async () => {
    const { driver, port, stored, lines } = setup();
    port.missing.add('sound:cc-offer');
    const done = driver.run(port, ARGS, 'ari');
    await settle();
    expect(lines.find((l) => l.event === 'offer.prompt_failed')).toMatchObject({ level: 'error', prompt: 'offer', media: 'sound:cc-offer' });
    port.press('#');
    expect(await done).toBe('requested');
    expect(stored).toHaveLength(1);
  });

  it('a failing answer ends the offer with a warning and stores nothing', async () => {
    const { driver, port, stored, lines } = setup();
    port.failAnswer = new Error('520 Invalid command syntax');
    expect(await driver.run(port, ARGS, 'agi')).toBe('hangup');
    expect(stored).toEqual([]);
    expect(lines.find((l) => l.event === 'offer.call_failed')).toMatchObject({ level: 'warn' });
  });
});

describe('the offer driver with the service preparation (promise, queue, zone)', () => {
  function prepared(prep: OfferPreparation | Error, result: OptInResult = { result: 'created', requestId: 'r1', promise: 'regular' }) {
    const stored: OfferRequestInput[] = [];
    const { log, lines } = capturedLog();
    const driver = new OfferDriver(
      {
        optIn: (input) => {
          stored.push({ ...input });
          return result;
        },
        prepare: async () => {
          if (prep instanceof Error) throw prep;
          return prep;
        },
      },
      { ...OPTS, prompts: { ...OPTS.prompts, queue: 'sound:cc-queue-${position}', offerNextDay: 'sound:cc-offer-next-day', confirmNextDay: 'sound:cc-confirm-next-day', closed: 'sound:cc-closed' } },
      log,
    );
    const port = new FakeCallPort('1712.42', { language: 'en', caller: { name: 'Agent', number: '1001' } });
    return { driver, port, stored, lines };
  }

  it('second in the queue: "you are second" (a key counts), then the offer; # stores with the prospect\'s zone', async () => {
    const { driver, port, stored, lines } = prepared(
      { context: { promise: 'regular', position: 2 }, timeZone: 'America/New_York', zoneSource: 'number', details: { queue: ['PJSIP/1002'], zoneNote: 'from the number +12125551234', why: 'a callback can fire today' } },
      { result: 'created', requestId: 'r1', promise: 'regular', position: 2 },
    );
    port.autoFinish = false;
    const done = driver.run(port, ARGS, 'ari');
    await settle();
    expect(port.playing).toEqual(['sound:cc-queue-2']);
    port.finishPrompt();
    await settle();
    expect(port.playing).toEqual(['sound:cc-offer']);
    expect(port.press('#')).toBe('prompt');
    await settle();
    expect(port.playing).toEqual(['sound:cc-confirm']);
    port.finishPrompt();
    expect(await done).toBe('requested');
    expect(port.calls).toEqual(['setLanguage en', 'answer', 'play sound:cc-queue-2 [#0123456789*]', 'play sound:cc-offer [#0123456789*]', 'stop', 'play sound:cc-confirm', 'hangup normal']);
    expect(stored).toEqual([expect.objectContaining({ prospect: '2001', timeZone: 'America/New_York', zoneSource: 'number' })]);
    expect(lines.find((l) => l.event === 'offer.started')).toMatchObject({ promise: 'regular', position: 2, queue: ['PJSIP/1002'], timeZone: 'America/New_York', zoneSource: 'number' });
    expect(lines.find((l) => l.event === 'offer.opted_in')).toMatchObject({ promise: 'regular', position: 2 });
  });

  it('a key during the queue notice decides at once (# stores without the offer prompt)', async () => {
    const { driver, port, stored } = prepared({ context: { promise: 'regular', position: 7 } });
    port.autoFinish = false;
    const done = driver.run(port, ARGS, 'agi');
    await settle();
    expect(port.playing).toEqual(['sound:cc-queue-many']);
    expect(port.press('#')).toBe('prompt');
    await settle();
    port.finishPrompt();
    expect(await done).toBe('requested');
    expect(stored).toHaveLength(1);
    expect(port.calls).not.toContain('play sound:cc-offer [#0123456789*]');
  });

  it('after hours, carried over: the next-calling-day offer and its confirmation', async () => {
    const { driver, port, stored } = prepared({ context: { promise: 'next-calling-day', position: 1 } }, { result: 'created', requestId: 'r1', promise: 'next-calling-day' });
    port.autoFinish = false;
    const done = driver.run(port, ARGS, 'ari');
    await settle();
    expect(port.playing).toEqual(['sound:cc-offer-next-day']);
    expect(port.press('#')).toBe('prompt');
    await settle();
    expect(port.playing).toEqual(['sound:cc-confirm-next-day']);
    port.finishPrompt();
    expect(await done).toBe('requested');
    expect(stored).toHaveLength(1);
  });

  it('the window closed between the offer and the key: the stored request decides the confirmation', async () => {
    const { driver, port } = prepared({ context: { promise: 'regular', position: 1 } }, { result: 'created', requestId: 'r1', promise: 'next-calling-day' });
    port.autoFinish = false;
    const done = driver.run(port, ARGS, 'ari');
    await settle();
    port.press('#');
    await settle();
    expect(port.playing).toEqual(['sound:cc-confirm-next-day']);
    port.finishPrompt();
    expect(await done).toBe('requested');
  });

  it('after hours, declined: the reason only, no key waited for, nothing stored', async () => {
    const { driver, port, stored, lines } = prepared({ context: { promise: 'declined' }, timeZone: 'Europe/Berlin', zoneSource: 'default', details: { why: 'outside calling hours' } });
    const done = driver.run(port, ARGS, 'ari');
    expect(await done).toBe('closed');
    expect(port.calls).toEqual(['setLanguage en', 'answer', 'play sound:cc-closed', 'hangup normal']);
    expect(stored).toEqual([]);
    expect(lines.find((l) => l.event === 'offer.started')).toMatchObject({ promise: 'declined', why: 'outside calling hours' });
    expect(lines.find((l) => l.event === 'offer.ended')).toMatchObject({ outcome: 'closed' });
  });

  it('closed at the store (the engine refused to promise after the key): the closed notice, no request id', async () => {
    const { driver, port, lines } = prepared({ context: { promise: 'regular', position: 1 } }, { result: 'closed', reason: 'outside calling hours' });
    port.autoFinish = false;
    const done = driver.run(port, ARGS, 'ari');
    await settle();
    port.press('#');
    await settle();
    expect(port.playing).toEqual(['sound:cc-closed']);
    port.finishPrompt();
    expect(await done).toBe('closed');
    expect(lines.some((l) => l.event === 'offer.opted_in')).toBe(false);
    const ended = lines.find((l) => l.event === 'offer.ended');
    expect(ended).toMatchObject({ outcome: 'closed' });
    expect(ended?.requestId).toBeUndefined();
  });

  it('a failing preparation is logged and the regular offer plays', async () => {
    const { driver, port, stored, lines } = prepared(new Error('lookup broke'));
    port.autoFinish = false;
    const done = driver.run(port, ARGS, 'ari');
    await settle();
    expect(port.playing).toEqual(['sound:cc-offer']);
    port.press('#');
    await settle();
    port.finishPrompt();
    expect(await done).toBe('requested');
    expect(stored).toHaveLength(1);
    expect(lines.find((l) => l.event === 'offer.prepare_failed')).toMatchObject({ error: 'lookup broke' });
  });
});
