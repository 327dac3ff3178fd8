/**
 * Error types a caller branches on carry a stable `code` (docs/architecture.md): the code, not the English
 * message, is the contract. The command line maps them to exit codes, the page to HTTP statuses.
 */
import { ConfigError } from '../../src/config/load';
import { AgiCommandError, AgiHangup } from '../../src/telephony/agi/server';
import { AriRestError } from '../../src/telephony/ari/rest';
import { InputError } from '../../src/views/errors';
import { scenarioFrom } from '../../src/views/explain';

describe('error codes', () => {
  it('each branched-on error type has its stable code', () => {
    expect(new InputError('x').code).toBe('invalid-input');
    expect(new ConfigError(['a: b'], 'test').code).toBe('config-invalid');
    expect(new AgiHangup().code).toBe('agi-hangup');
    expect(new AgiCommandError('STREAM FILE x ""', { code: 510, result: NaN, resultText: '', raw: '510 Invalid or unknown command' } as never).code).toBe('agi-command-failed');
    expect(new AriRestError(404, 'gone', 'channels.answer').code).toBe('ari-rest-failed');
  });

  it('a bad scenario of the read model throws InputError, whoever asked (CLI or page)', () => {
    let thrown: unknown;
    try {
      scenarioFrom({ keys: ['7'] }, 'Europe/Berlin', Date.UTC(2026, 2, 10));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(InputError);
    expect((thrown as InputError).code).toBe('invalid-input');
    expect((thrown as Error).message).toBe('--keys 7: expected 1, 2, 3, none or no-answer');
  });
});
