/** @type {import('jest').Config} */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // The docker demo's stack test has its own runner: npm run test:compose (test/compose/jest.config.js).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/compose/'],
  // Integration tests share one Asterisk sandbox; it is started once per run.
  globalSetup: '<rootDir>/test/integration/global-setup.ts',
  globalTeardown: '<rootDir>/test/integration/global-teardown.ts',
  testTimeout: 60000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
};
