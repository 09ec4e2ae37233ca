/**
 * Generated configuration and script parameters, snapshot-tested: a change to any of them shows
 * up in review as a diff of the snapshot file.
 */
import { spawnSync } from "child_process";
import { proxyCaddyConfig } from "../../components/reverseProxyNetwork";
import { renderScriptStdin, RUN_STDIN_SCRIPT } from "../../components/hostScript";
import { prepareHostParams } from "../../components/nvidiaHost";
import { ensureParams, snapshotParams } from "../../components/storageLayout";
import { redisConfig } from "../../components/roles";
import { decodeScriptParams } from "../support/mockProgram";

test("Caddy config: ACME, two routes (path route first), admin off", () => {
    expect(
        proxyCaddyConfig({
            routes: [
                { host: "agent.example.com", upstream: "prod-agent", port: 8080 },
                { host: "agent.example.com", upstream: "prod-inference", port: 11434, path: "/ollama/*" },
            ],
            tls: "acme",
            acmeEmail: "ops@example.com",
            dataVolumeName: "v",
        }),
    ).toMatchSnapshot();
});

test("Caddy config: HTTP only, admin on loopback", () => {
    expect(proxyCaddyConfig({ routes: [{ host: "a.localhost", upstream: "dev-agent", port: 8080 }], tls: "off", httpPort: 8080, adminApi: "loopback", dataVolumeName: "v" })).toMatchSnapshot();
});

test("host script parameters per step", () => {
    expect({
        prepareNoGpu: prepareHostParams({}),
        prepareGpus: prepareHostParams({ gpus: [0, "GPU-11111111-2222-3333-4444-555555555555"], cdi: true, sysctls: { "vm.swappiness": "10", "fs.inotify.max_user_watches": "524288" } }),
        ensureDb: ensureParams({ backend: "zfs", root: "tank/mmagent" }, { name: "agent-db", profile: "db", quotaGiB: 20 }),
        snapshot: snapshotParams({ backend: "btrfs", root: "/srv/mm", keepSnapshots: 5 }, ["agent-db", "agent-logs"], { container: "prod-agent", image: "app:2", restoreFrom: "mmagent-pre-0a0b0c0d" }, "mmagent-pre-1a2b3c4d"),
        redis: redisConfig(256, "PASSWORD"),
    }).toMatchSnapshot();
});

test("rendered parameters round-trip through bash byte for byte, and stay inert", () => {
    const payloads = ["a;touch /tmp/pwned", "$(touch /tmp/pwned)", "`touch /tmp/pwned`", "it's \"quoted\"", "--force", "line1\nline2", "ünïcødé ✓", "x".repeat(10_000)];
    for (const value of payloads) {
        const stdin = renderScriptStdin("storage", { MMAGENT_ACTION: "none", MMAGENT_BACKEND: "dir", MMAGENT_ROOT: "/tmp/mmagent-roundtrip", MMAGENT_PAYLOAD: value });
        expect(decodeScriptParams(stdin).MMAGENT_PAYLOAD).toBe(value);
        // Replace the script body with one that prints the decoded value: the preamble alone decides.
        const preamble = stdin.slice(0, stdin.indexOf("#!/usr/bin/env bash", 10));
        const r = spawnSync("/bin/sh", ["-c", RUN_STDIN_SCRIPT], { input: `${preamble}\nprintf '%s' "$MMAGENT_PAYLOAD"\n`, encoding: "utf8" });
        expect(r.stdout).toBe(value);
    }
    expect(() => renderScriptStdin("storage", { MMAGENT_X: "a\0b" })).toThrow(/NUL/);
    expect(() => renderScriptStdin("storage", { "MMAGENT_X;rm": "a" })).toThrow(/must match/);
});
