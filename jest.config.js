/** Tests run as ES modules straight from TypeScript; type checking is `npm run typecheck`. */
// As aws/clients.ts does for the plugin: tests that make their own SDK clients would print the
// SDK's Node-version notice once per test file. Workers inherit this environment.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.test.json' }],
  },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // dist/ holds the build (and a copy of package.json, for --version): not modules for tests.
  modulePathIgnorePatterns: ['<rootDir>/dist/'],
  testTimeout: 120000,
};
