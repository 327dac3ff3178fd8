/**
 * SIPp for the integration tests: the runner of testkit/sipp.ts (the demo and the bench drive the same
 * phones), with the scenarios of testkit/scenarios/ (see its README.md). Use it only inside
 * `describePbx` suites: the phones talk to the sandbox Asterisk.
 */
export * from '../../testkit/sipp';
export { SCENARIOS as SIPP_DIR } from '../../testkit/sandbox';
