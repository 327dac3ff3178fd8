/**
 * SIPp from integration tests: real SIP phones against the sandbox Asterisk (see test/sipp/README.md).
 *
 * The runner lives in src/demo/sipp.ts (the demo drives the same phones); this module points it at the
 * scenarios in test/sipp/ and keeps the API the tests use:
 *
 * - `startSipp` spawns one SIPp run in its own temp directory with `-trace_msg` / `-trace_err`; `done()`
 *   awaits its exit and returns the exit code plus the parsed messages log. SIPp's own `-timeout` ends a
 *   stuck run; if SIPp ignores it, we kill it a little later. Every run is tracked: `stopAllSipp()` (in
 *   `afterEach`) kills whatever is left, also when a test failed half-way.
 * - `register` / `unregister` make a SIPp port the contact of an endpoint (must be the port of the UAS
 *   that will answer: Asterisk stores the REGISTER's source address).
 * - `callerView(invite)`: what a phone would display for an INVITE it received (From display name and
 *   user, P-Asserted-Identity / Remote-Party-ID, Alert-Info).
 *
 * Nothing happens at import time: use it only inside `describePbx` suites.
 */
import path from 'node:path';
import * as runner from '../../src/demo/sipp';
import { ROOT } from './paths';

export {
  ASTERISK_SIP,
  PORTS,
  SIPP_BIN,
  SipMessage,
  callerView,
  describeSipp,
  expectSippOk,
  findMessage,
  ladder,
  parseMessagesLog,
  parseNameAddr,
  sippAvailable,
  stopAllSipp,
  udpPortBound,
} from '../../src/demo/sipp';
export type { CallerView, NameAddr, SippOptions, SippResult } from '../../src/demo/sipp';

export const SIPP_DIR = path.join(ROOT, 'test/sipp');

/** A SIPp run whose scenario names are looked up in test/sipp. */
export class SippRun extends runner.SippRun {
  constructor(opts: runner.SippOptions) {
    super({ scenarioDir: SIPP_DIR, ...opts });
  }
}

/** Starts a SIPp run (returns at once; `await run.ready()` before a UAS is called). */
export function startSipp(opts: runner.SippOptions): SippRun {
  return new SippRun(opts);
}

/** Runs SIPp to the end. */
export function runSipp(opts: runner.SippOptions): Promise<runner.SippResult> {
  return startSipp(opts).done();
}

/** REGISTERs `user` with the contact 127.0.0.1:`port` (the port of the UAS that should get its calls). */
export function register(user: string, password: string, port: number): Promise<runner.SippResult> {
  return runner.register(user, password, port, SIPP_DIR);
}

/** Removes that registration again (Expires: 0). */
export function unregister(user: string, password: string, port: number): Promise<runner.SippResult> {
  return runner.unregister(user, password, port, SIPP_DIR);
}
