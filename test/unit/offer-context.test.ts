/** The offer with a context: what the policy can promise now and the agent's place in the queue for the number. */
import { OfferInput, OfferState, initialOfferState, offerMedia, stepOffer } from '../../src/core/offer';

const t = { keyTimeoutMs: 6000, closingTimeoutMs: 15000 };

function run(inputs: OfferInput[]): { state: OfferState; actions: string[] } {
  let state = initialOfferState();
  const actions: string[] = [];
  for (const input of inputs) {
    const step = stepOffer(state, input, t);
    state = step.state;
    for (const a of step.actions) {
      actions.push(
        a.type === 'play' ? `play:${a.prompt}${a.position ? `@${a.position}` : ''}` : a.type === 'startTimer' ? `timer:${a.ms}` : a.type,
      );
    }
  }
  return { state, actions };
}

describe('the offer after hours', () => {
  it('carry-over: a distinct offer and confirmation for the next calling day', () => {
    const r = run([
      { type: 'start', context: { promise: 'next-calling-day', position: 1 } },
      { type: 'promptFinished', prompt: 'offerNextDay' },
      { type: 'dtmf', digit: '#' },
      { type: 'stored', result: 'created', promise: 'next-calling-day' },
      { type: 'promptFinished', prompt: 'confirmNextDay' },
    ]);
    expect(r.actions).toEqual([
      'answer',
      'play:offerNextDay',
      'timer:6000',
      'cancelTimer',
      'stopPlayback',
      'store',
      'cancelTimer',
      'play:confirmNextDay',
      'timer:15000',
      'cancelTimer',
      'hangup',
    ]);
    expect(r.state).toMatchObject({ phase: 'done', outcome: 'requested' });
  });

  it('decline: no offer, no key waited for; a short reason and hang up', () => {
    const r = run([{ type: 'start', context: { promise: 'declined' } }, { type: 'dtmf', digit: '#' }, { type: 'promptFinished', prompt: 'closed' }]);
    expect(r.actions).toEqual(['answer', 'play:closed', 'timer:15000', 'cancelTimer', 'hangup']);
    expect(r.state).toMatchObject({ phase: 'done', outcome: 'closed' });
    expect(r.actions).not.toContain('store');
  });

  it('the confirmation follows what the store promised, not what the offer said', () => {
    // Offered at 17:54:59 as usual; # at 17:55:05 when only the next calling day was left.
    const late = run([{ type: 'start', context: { promise: 'regular' } }, { type: 'dtmf', digit: '#' }, { type: 'stored', result: 'created', promise: 'next-calling-day' }]);
    expect(late.actions.slice(-2)).toEqual(['play:confirmNextDay', 'timer:15000']);
    const closed = run([{ type: 'start', context: { promise: 'regular' } }, { type: 'dtmf', digit: '#' }, { type: 'stored', result: 'closed' }]);
    expect(closed.actions.slice(-2)).toEqual(['play:closed', 'timer:15000']);
    expect(closed.state).toMatchObject({ phase: 'closing', outcome: 'closed' });
  });

  it('a store answer without a promise confirms what the offer said', () => {
    const r = run([{ type: 'start', context: { promise: 'next-calling-day' } }, { type: 'dtmf', digit: '#' }, { type: 'stored', result: 'refreshed' }]);
    expect(r.actions.slice(-2)).toEqual(['play:confirmNextDay', 'timer:15000']);
  });

  it('a regular context behaves exactly like no context', () => {
    const inputs: OfferInput[] = [{ type: 'promptFinished', prompt: 'offer' }, { type: 'dtmf', digit: '#' }, { type: 'stored', result: 'created' }];
    expect(run([{ type: 'start', context: { promise: 'regular', position: 1 } }, ...inputs]).actions).toEqual(run([{ type: 'start' }, ...inputs]).actions);
  });
});

describe('the offer when colleagues wait for the same number', () => {
  it('says so first ("you are second"), then offers; the agent can still choose', () => {
    const r = run([
      { type: 'start', context: { promise: 'regular', position: 2 } },
      { type: 'promptFinished', prompt: 'queue' },
      { type: 'promptFinished', prompt: 'offer' },
      { type: 'dtmf', digit: '#' },
      { type: 'stored', result: 'created', promise: 'regular' },
    ]);
    expect(r.actions).toEqual(['answer', 'play:queue@2', 'play:offer', 'timer:6000', 'cancelTimer', 'stopPlayback', 'store', 'cancelTimer', 'play:confirm', 'timer:15000']);
  });

  it('a key during the queue prompt decides at once: # opts in, another key declines', () => {
    const yes = run([{ type: 'start', context: { promise: 'regular', position: 3 } }, { type: 'dtmf', digit: '#' }]);
    expect(yes.actions).toEqual(['answer', 'play:queue@3', 'cancelTimer', 'stopPlayback', 'store']);
    const no = run([{ type: 'start', context: { promise: 'regular', position: 2 } }, { type: 'dtmf', digit: '5' }]);
    expect(no.state).toMatchObject({ phase: 'closing', outcome: 'declined' });
  });

  it('no key: the timer starts only after the offer that follows the queue prompt', () => {
    const r = run([{ type: 'start', context: { promise: 'next-calling-day', position: 2 } }, { type: 'promptFinished', prompt: 'queue' }]);
    expect(r.actions).toEqual(['answer', 'play:queue@2', 'play:offerNextDay']);
    expect(r.actions).not.toContain('timer:6000');
  });

  it('the queue prompt is a sound per position (2…5), then "many"', () => {
    const prompts = { offer: 'o', confirm: 'c', goodbye: 'g', full: 'f', error: 'e' };
    expect(offerMedia(prompts, 'queue', 2)).toBe('sound:cc-queue-2');
    expect(offerMedia(prompts, 'queue', 5)).toBe('sound:cc-queue-5');
    expect(offerMedia(prompts, 'queue', 6)).toBe('sound:cc-queue-many');
    expect(offerMedia({ ...prompts, queue: 'sound:my-q-${position}' }, 'queue', 3)).toBe('sound:my-q-3');
    expect(offerMedia(prompts, 'offerNextDay')).toBe('sound:cc-offer-next-day');
    expect(offerMedia(prompts, 'offer')).toBe('o');
  });
});
