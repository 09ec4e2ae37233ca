/**
 * Generated configuration and script parameters, snapshot-tested: a change to any of them shows
 * up in review as a diff of the snapshot file.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { proxyCaddyConfig } from "../../components/reverseProxyNetwork";
import { MAX_ENV_STRING_BYTES, maxParamBytes, renderScriptStdin, RUN_STDIN_SCRIPT, sudoersLine } from "../../components/hostScript";
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
            adminApi: "off",
        }),
    ).toMatchSnapshot();
});

test("Caddy config: HTTP only, admin on loopback", () => {
    expect(proxyCaddyConfig({ routes: [{ host: "a.localhost", upstream: "dev-agent", port: 8080 }], tls: "off", httpPort: 8080, adminApi: "loopback" })).toMatchSnapshot();
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

test("a parameter the kernel would not pass (NAME=value and a NUL over 131072 bytes) is refused by name and size, in bytes", () => {
    const params = (root: string) => ({ MMAGENT_ACTION: "ensure", MMAGENT_BACKEND: "dir", MMAGENT_ROOT: root });
    // "MMAGENT_ROOT=" is 13 bytes and the NUL one more.
    expect(MAX_ENV_STRING_BYTES).toBe(131072);
    expect(maxParamBytes("MMAGENT_ROOT")).toBe(131072 - 13 - 1);
    expect(() => renderScriptStdin("storage", params(`/${"a".repeat(maxParamBytes("MMAGENT_ROOT") - 1)}`))).not.toThrow();
    expect(() => renderScriptStdin("storage", params(`/${"a".repeat(maxParamBytes("MMAGENT_ROOT"))}`))).toThrow(
        'host script parameter MMAGENT_ROOT is 131059 bytes; the kernel passes at most 131072 bytes per variable (NAME=value and a NUL), so at most 131058 for this one, ' +
            'and every command the script ran would fail with "Argument list too long": nothing was sent to the host',
    );
    // Bytes, not characters: 65 530 "é" are 131 060 bytes.
    expect(() => renderScriptStdin("storage", params("é".repeat(65_530)))).toThrow(/parameter MMAGENT_ROOT is 131060 bytes/);
    // The first parameter over the limit is the one named.
    expect(() => renderScriptStdin("prepare-host", { MMAGENT_GPUS: "none", MMAGENT_SYSCTLS: "x".repeat(200_000) })).toThrow(/^host script parameter MMAGENT_SYSCTLS is 200000 bytes/);
});

test("the create command and the sudoers line it asks for", () => {
    expect({ create: RUN_STDIN_SCRIPT, sudoers: sudoersLine("deploy") }).toMatchSnapshot();
});

describe("create command as a non-root user (fake `id` and `sudo`, so it runs as anyone)", () => {
    let dir: string;
    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-create-"));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    /** A PATH of fakes plus links to the few real commands the create command needs (no real sudo). */
    function fakePath(fakes: Record<string, string>): string {
        for (const cmd of ["mktemp", "cat", "rm"]) {
            const real = spawnSync("/bin/sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" }).stdout.trim();
            fs.symlinkSync(real, path.join(dir, cmd));
        }
        const all = { id: 'case "$1" in -u) echo 1000 ;; -un) echo deploy ;; *) exit 1 ;; esac', ...fakes };
        for (const [name, body] of Object.entries(all)) fs.writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
        return dir;
    }
    const run = (PATH: string) => spawnSync("/bin/sh", ["-c", RUN_STDIN_SCRIPT], { input: "echo ran as $(id -un)\n", env: { PATH }, encoding: "utf8" });
    /** The command part of the sudoers line as a regex: each `?` is one character. */
    const allowed = new RegExp(`^${sudoersLine("deploy").split("NOPASSWD: ")[1].replace(/[.*+^${}()|[\]\\/]/g, "\\$&").replace(/\?/g, "[^ ]")}$`);

    test("escalates with exactly `sudo -n /bin/bash FILE`, FILE matching the sudoers line (a dry run, then the program)", () => {
        const log = path.join(dir, "sudo.log");
        const r = run(fakePath({ sudo: `printf '%s\\n' "$*" >>${log}; [ "$1" = -n ] || exit 99; shift; exec "$@"` }));
        expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: "ran as deploy\n", stderr: "" });
        const calls = fs.readFileSync(log, "utf8").trim().split("\n");
        expect(calls).toHaveLength(2);
        expect(calls[1]).toBe(calls[0]);
        expect(calls[0]).toMatch(/^-n /);
        const cmd = calls[0].slice("-n ".length);
        expect(cmd).toMatch(allowed);
        expect(fs.existsSync(cmd.split(" ")[1])).toBe(false);
    });

    test.each([
        ["sudo refuses (a password is required)", { sudo: "echo 'sudo: a password is required' >&2; exit 1" }],
        ["sudo is not installed", {}],
    ])("%s: one stderr line naming the user and the exact sudoers line, nothing run", (_name, fakes) => {
        const r = run(fakePath(fakes));
        expect(r.status).not.toBe(0);
        expect(r.stdout).toBe("");
        expect(r.stderr.split("\n")).toEqual([expect.stringMatching(/^mmagent: user 'deploy' is not root /), ""]);
        expect(r.stderr.trimEnd().endsWith(`: ${sudoersLine("deploy")}`)).toBe(true);
    });
});
