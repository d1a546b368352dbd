// Mutation testing of lib/ with Stryker (docs/testing.md). Run it through scripts/mutation.js
// (`npm run test:mutation -- <target>`), which picks the files to mutate and the jest files that
// exercise them, and passes the latter here in CONVKIT_MUTATION_TESTS: running the whole jest
// suite for every mutant would take days on a small machine. By hand only; CI does not run it.
//
// The jest config is package.json's. Jest's `--findRelatedTests` cannot be used to choose the
// tests: package.json's `roots` is test/ alone, so jest's module map does not know lib/ and finds
// no related tests at all. With `coverageAnalysis: 'perTest'`, each mutant then runs only the
// tests (of those jest files) that reached its code in the dry run.
const tests = (process.env.CONVKIT_MUTATION_TESTS ?? '').split(',').filter(Boolean);
const target = process.env.CONVKIT_MUTATION_TARGET || 'all';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'jest',
  jest: {
    projectType: 'custom',
    enableFindRelatedTests: false,
    config: tests.length > 0 ? { testMatch: tests.map((t) => `<rootDir>/${t}`) } : {},
  },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  coverageAnalysis: 'perTest',
  // Overridden by --mutate (the wrapper always passes it).
  mutate: ['lib/**/*.ts'],
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${target}/mutation.html` },
  jsonReporter: { fileName: `reports/mutation/${target}/mutation.json` },
  // Kept out of the sandbox copy: the other builds (hundreds of MB) and everything the TypeScript
  // tests do not read. The native addon is copied as lib/native.ts finds it (node-gyp-build: a
  // prebuild in prebuilds/ first, else build/Release/convkit.node), unless CONVKIT_ADDON names one.
  ignorePatterns: [
    '/build/*', '!/build/Release', '/build/Release/*', '!/build/Release/convkit.node',
    '/build-*/', '/dist/', '/runs/', '/reports/', '/docs/', '/examples/', '/native/',
    '/scripts/', '/cmake/', '*.tgz',
  ],
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
  // A mutant's tests may take twice the dry run's time plus 10 s (some jest files train small
  // models, and a shared 2-core machine is slow) before it counts as a timeout (an infinite loop).
  timeoutMS: 10000,
  timeoutFactor: 2,
};
