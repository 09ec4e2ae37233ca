/** Three projects: `unit` (mocks, pure functions; fast, no host needed) and `real` (a real Docker
 * engine, real Btrfs, the real host scripts; needs `scripts/test-host.sh up`), and `e2e` (the dev stack applied to that engine). */
const common = {
    preset: "ts-jest",
    testEnvironment: "node",
    transform: { "^.+\\.ts$": ["ts-jest", {}] },
};
module.exports = {
    projects: [
        { ...common, displayName: "unit", testMatch: ["<rootDir>/test/unit/**/*.test.ts"] },
        { ...common, displayName: "real", testMatch: ["<rootDir>/test/real/**/*.test.ts"], slowTestThreshold: 60,
          // Real processes on a shared 2-core machine: a test that takes 5 s under CI load is slow, not wrong.
          testTimeout: 120_000 },
        // The whole dev stack applied to the real engine through test/support/realEngineHarness.ts.
        { ...common, displayName: "e2e", testMatch: ["<rootDir>/test/e2e/**/*.test.ts"], slowTestThreshold: 300 },
        // Benchmarks (not run by `npm test`): bench/*.sh call them.
        { ...common, displayName: "bench", testMatch: ["<rootDir>/bench/**/*.bench.ts"] },
    ],
};
