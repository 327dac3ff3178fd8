/**
 * Prints one plain closing line, `jest: N passed, N failed, N skipped`, after jest's own summary, so
 * that CI logs state the outcome in a form any tool can read.
 */
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const line = `jest: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped`;
    process.stderr.write(`${line}\n`);
    // .ci/run prints it again as the very last line of the log.
    require('node:fs').writeFileSync(require('node:path').join(__dirname, '../../.jest-summary'), `${line}\n`);
  }
}
module.exports = SummaryReporter;
