/** Two projects: `unit` (mocks, pure functions; fast, no host needed) and `real` (a real Docker
 * engine, real Btrfs, the real host scripts; needs `scripts/test-host.sh up`). */
const common = {
    preset: "ts-jest",
    testEnvironment: "node",
    transform: { "^.+\\.ts$": ["ts-jest", {}] },
};
module.exports = {
    projects: [
        { ...common, displayName: "unit", testMatch: ["<rootDir>/test/unit/**/*.test.ts"] },
        { ...common, displayName: "real", testMatch: ["<rootDir>/test/real/**/*.test.ts"], slowTestThreshold: 60 },
    ],
};
