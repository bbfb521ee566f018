/** Unit tests live beside the code (*.test.ts); end-to-end tests against the real stack in test/e2e (*.e2e.ts). */
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.json' }];

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform: { '^.+\\.ts$': tsJest },
      testMatch: [
        '<rootDir>/{common,runner,activities,workflows,worker,db,api,cli,client,stack,bench,chaos,egress,webhooks,web,testing}/**/*.test.ts',
        '<rootDir>/test/replay/**/*.test.ts',
      ],
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      transform: { '^.+\\.ts$': tsJest },
      testMatch: ['<rootDir>/test/e2e/**/*.e2e.ts'],
      globalSetup: '<rootDir>/test/e2e/global-setup.ts',
      globalTeardown: '<rootDir>/test/e2e/global-teardown.ts',
    },
  ],
  testTimeout: 180_000,
  // The Temporal SDK's native handles can keep the process alive after the last test.
  forceExit: true,
};
