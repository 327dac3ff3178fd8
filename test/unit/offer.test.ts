import { OfferInput, OfferState, initialOfferState, parseOfferArgs, stepOffer } from '../../src/core/offer';
import { defaultNumberRules } from '../../src/core/validate';

const t = { keyTimeoutMs: 6000, closingTimeoutMs: 15000 };

function run(inputs: OfferInput[]): { state: OfferState; actions: string[] } {
  let state = initialOfferState();
  const actions: string[] = [];
  for (const input of inputs) {
    const step = stepOffer(state, input, t);
    state = step.state;
    for (const a of step.actions) {
      actions.push(a.type === 'play' ? `play:${a.prompt}` : a.type === 'startTimer' ? `timer:${a.ms}` : a.type);
    }
  }
  return { state, actions };
}

describe('the offer machine', () => {
  it('answers and plays the offer, then arms the key timer only after the prompt', () => {
    expect(run([{ type: 'start' }]).actions).toEqual(['answer', 'play:offer']);
    expect(run([{ type: 'start' }, { type: 'promptFinished', prompt: 'offer' }]).actions).toEqual([
      'answer',
      'play:offer',
      'timer:6000',
    ]);
  });

  it('stores on # (even while the prompt still plays), confirms, then hangs up', () => {
    const r = run([
      { type: 'start' },
      { type: 'dtmf', digit: '#' },
      { type: 'stored', result: 'created' },
      { type: 'promptFinished', prompt: 'confirm' },
    ]);
    expect(r.actions).toEqual([
      'answer',
      'play:offer',
      'cancelTimer',
      'stopPlayback',
      'store',
      'cancelTimer',
      'play:confirm',
      'timer:15000',
      'cancelTimer',
      'hangup',
    ]);
    expect(r.state).toEqual({ phase: 'done', outcome: 'requested', key: '#' });
  });

  it('reports a refresh as such and confirms it', () => {
    const r = run([{ type: 'start' }, { type: 'dtmf', digit: '#' }, { type: 'stored', result: 'refreshed' }]);
    expect(r.state.outcome).toBe('refreshed');
    expect(r.actions).toContain('play:confirm');
  });

  it('tells the agent when the list is full', () => {
    const r = run([{ type: 'start' }, { type: 'dtmf', digit: '#' }, { type: 'stored', result: 'full' }]);
    expect(r.state).toMatchObject({ phase: 'closing', outcome: 'full' });
    expect(r.actions.slice(-2)).toEqual(['play:full', 'timer:15000']);
  });

  it.each(['1', '0', '*', '9', 'A'])('any other key (%s) stores nothing and says goodbye', (digit) => {
    const r = run([{ type: 'start' }, { type: 'promptFinished', prompt: 'offer' }, { type: 'dtmf', digit }]);
    expect(r.actions).not.toContain('store');
    expect(r.actions.slice(-4)).toEqual(['stopPlayback', 'cancelTimer', 'play:goodbye', 'timer:15000']);
    expect(r.state).toEqual({ phase: 'closing', outcome: 'declined', key: digit });
  });

  it('silence stores nothing: timeout → goodbye → hang-up', () => {
    const r = run([
      { type: 'start' },
      { type: 'promptFinished', prompt: 'offer' },
      { type: 'timeout' },
      { type: 'promptFinished', prompt: 'goodbye' },
    ]);
    expect(r.actions).not.toContain('store');
    expect(r.state).toEqual({ phase: 'done', outcome: 'timeout', key: undefined });
    expect(r.actions.slice(-1)).toEqual(['hangup']);
  });

  it('a goodbye that never finishes still ends the call at the closing timeout', () => {
    const r = run([{ type: 'start' }, { type: 'dtmf', digit: '5' }, { type: 'timeout' }]);
    expect(r.state.phase).toBe('done');
    expect(r.actions.slice(-1)).toEqual(['hangup']);
  });

  it('ignores keys after the decision', () => {
    const r = run([{ type: 'start' }, { type: 'dtmf', digit: '1' }, { type: 'dtmf', digit: '#' }]);
    expect(r.actions).not.toContain('store');
    expect(r.state.outcome).toBe('declined');
  });

  it('a second # while storing is ignored (one request per press)', () => {
    const r = run([{ type: 'start' }, { type: 'dtmf', digit: '#' }, { type: 'dtmf', digit: '#' }]);
    expect(r.actions.filter((a) => a === 'store')).toHaveLength(1);
  });

  it('hang-up during the offer ends it with nothing stored', () => {
    const r = run([{ type: 'start' }, { type: 'hangup' }]);
    expect(r.state).toEqual({ phase: 'done', outcome: 'hangup' });
    expect(r.actions).not.toContain('store');
  });

  it('hang-up while storing keeps the request (the # was pressed) and plays nothing more', () => {
    const r = run([{ type: 'start' }, { type: 'dtmf', digit: '#' }, { type: 'hangup' }, { type: 'stored', result: 'created' }]);
    expect(r.state).toMatchObject({ phase: 'done', outcome: 'requested' });
    expect(r.actions.filter((a) => a.startsWith('play:'))).toEqual(['play:offer']);
  });

  it('a failed store is told to the agent and ends the call', () => {
    const r = run([{ type: 'start' }, { type: 'dtmf', digit: '#' }, { type: 'storeFailed' }, { type: 'promptFinished', prompt: 'error' }]);
    expect(r.state).toMatchObject({ phase: 'done', outcome: 'store-failed' });
    expect(r.actions).toContain('play:error');
  });

  it('a stray timeout or prompt end before start does nothing', () => {
    expect(stepOffer(initialOfferState(), { type: 'timeout' }, t)).toEqual({ state: { phase: 'new' }, actions: [] });
    expect(stepOffer({ phase: 'done', outcome: 'hangup' }, { type: 'hangup' }, t).actions).toEqual([]);
  });
});

describe('parseOfferArgs', () => {
  it('parses what the dialplan hands over', () => {
    expect(parseOfferArgs(['offer', '2001', 'PJSIP/1001', '17'], defaultNumberRules)).toEqual({
      ok: true,
      value: { prospect: '2001', agent: 'PJSIP/1001', hangupCause: 17 },
    });
    expect(parseOfferArgs(['offer', '+4930123', 'PJSIP/1001'], defaultNumberRules)).toEqual({
      ok: true,
      value: { prospect: '+4930123', agent: 'PJSIP/1001', hangupCause: undefined },
    });
  });

  it.each([
    [['offer', '123&PJSIP/evil', 'PJSIP/1001'], /contains "&"/],
    [['offer', '123@other', 'PJSIP/1001'], /contains "@"/],
    [['offer', '', 'PJSIP/1001'], /empty/],
    [['offer', '9'.repeat(200), 'PJSIP/1001'], /200 digits/],
    [['offer', '2001', 'PJSIP/1001&PJSIP/evil'], /agent device/],
    [['offer', '2001'], /agent device is empty/],
    [['recall', '2001', 'PJSIP/1001'], /unknown Stasis verb "recall"/],
    [[], /unknown Stasis verb ""/],
  ])('refuses %j', (args, reason) => {
    const r = parseOfferArgs(args as string[], defaultNumberRules);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });
});
