/** `npm run test:compose` (scripts/test-compose.sh): the docker demo's stack; not part of `npm test`. */
/** @type {import('jest').Config} */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  rootDir: '../..',
  roots: ['<rootDir>/test/compose'],
  testMatch: ['**/*.test.ts'],
  testTimeout: 600000,
  // Not the summary reporter: .jest-summary is npm test's closing line in CI (.ci/run).
  reporters: ['default'],
};
