/**
 * Hostile input, proven on this machine: every payload of the injection corpus (test/support/
 * injection.ts) — each would create a canary file if anything executed it — is placed
 *   1. in every config key whose value can reach a host (script parameters, the SSH connection,
 *      the proxy's config): the validator must refuse it naming that key, or, if it accepts it,
 *      the value is passed to the real scripts below;
 *   2. in every parameter of every host script, bypassing validation (defense in depth): the
 *      real scripts, run exactly as a deployment runs them, must refuse it naming the parameter
 *      or treat it as inert data. The canary must never appear.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { parseStackConfig } from "../../components/config";
import { HostScriptName, paramLine, readHostScript, renderScriptStdin } from "../../components/hostScript";
import { prepareHostParams } from "../../components/nvidiaHost";
import { planGuards, planVolumes } from "../../components/stack";
import { ensureParams, restoreParams, snapshotParams } from "../../components/storageLayout";
import { proxyConfigParams } from "../../components/reverseProxyNetwork";
import { BtrfsLoop, fakeCommands, requirePrerequisites, runScriptStdin } from "../support/host";
import { payloads, rawPayloads } from "../support/injection";

const work = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-injection-"));
const CANARY = path.join(work, "canary");
const CORPUS = payloads(CANARY);
const RAW = rawPayloads(CANARY);
const hostRoot = path.join(work, "host-root");
const fakeBin = path.join(work, "bin");
// proxy-config.sh's docker calls (validate in a throwaway container, is the proxy running): a fake
// that validates anything and finds no proxy, so only the script's own handling of each value runs.
const proxyFakeBin = path.join(work, "proxy-bin");
const proxyConfigDir = path.join(work, "proxy-config");
// The scripts run from a directory holding a valid volume name, so a glob that expanded would show.
const cwd = path.join(work, "cwd");
let loop: BtrfsLoop;

beforeAll(() => {
    requirePrerequisites({ commands: ["btrfs", "mkfs.btrfs"], docker: true, root: true });
    loop = new BtrfsLoop(256).create();
    fs.mkdirSync(path.join(cwd, "globbed-vol"), { recursive: true });
    // The kernel's sysctls and ZFS are not touched: recording fakes stand in for them.
    fakeCommands(fakeBin, path.join(work, "fakes.log"), { sysctl: "exit 0", zfs: "exit 1" });
    fakeCommands(proxyFakeBin, path.join(work, "proxy-fakes.log"), { docker: 'case "$1" in run) if [[ " $* " == *" --entrypoint id "* ]]; then echo "uid=0(root) gid=0(root)"; fi; exit 0 ;; inspect) echo false ;; *) exit 1 ;; esac' });
    fs.mkdirSync(proxyConfigDir);
});
afterAll(() => {
    loop?.destroy();
    fs.rmSync(work, { recursive: true, force: true });
});

function canaryAppeared(): boolean {
    const found = fs.existsSync(CANARY) || fs.readdirSync(cwd).some((f) => f !== "globbed-vol");
    fs.rmSync(CANARY, { force: true });
    return found;
}

/** Runs a script as hostScriptCommand does; a Buffer value skips the renderer's own NUL check. */
function runScript(script: HostScriptName, params: Record<string, string | Buffer>): { status: number; stderr: string } {
    const text = Object.fromEntries(Object.entries(params).filter(([, v]) => typeof v === "string")) as Record<string, string>;
    let stdin = renderScriptStdin(script, text);
    const raw = Object.entries(params).filter(([, v]) => Buffer.isBuffer(v)) as [string, Buffer][];
    if (raw.length > 0) {
        const body = readHostScript(script);
        stdin = stdin.replace(body, () => `${raw.map(([k, b]) => paramLine(k, b)).join("\n")}\n${body}`);
    }
    const bins = script === "proxy-config" ? `${proxyFakeBin}:${fakeBin}` : fakeBin;
    return runScriptStdin(stdin, { cwd, env: { ...process.env, PATH: `${bins}:${process.env.PATH}` }, timeoutMs: 60_000 });
}

const VOL = "inj-vol";
/** A certificate and key in PEM form (the script checks the form; HAProxy, faked here, the contents). */
const PEM_BUNDLE = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n";
const SNAP = "mmagent-pre-0000aaaa";
interface ScriptCase {
    script: HostScriptName;
    action: string;
    base: () => Record<string, string>;
    params: string[];
}
const SCRIPT_CASES: ScriptCase[] = [
    {
        script: "prepare-host",
        action: "prepare",
        base: () => ({ ...prepareHostParams({ gpus: "none" }), MMAGENT_HOST_ROOT: hostRoot }),
        params: ["MMAGENT_GPUS", "MMAGENT_TOOLKIT_VERSION", "MMAGENT_CDI", "MMAGENT_SYSCTLS", "MMAGENT_SMOKE_IMAGE", "MMAGENT_HOST_ROOT"],
    },
    {
        script: "storage",
        action: "ensure (btrfs)",
        base: () => ensureParams({ backend: "btrfs", root: loop.mountPoint }, { name: VOL, profile: "db", quotaGiB: 1 }),
        params: ["MMAGENT_ACTION", "MMAGENT_BACKEND", "MMAGENT_ROOT", "MMAGENT_VOLUME", "MMAGENT_BTRFS_NOCOW", "MMAGENT_BTRFS_COMPRESSION", "MMAGENT_QUOTA_GIB"],
    },
    {
        script: "storage",
        action: "ensure (zfs)",
        base: () => ensureParams({ backend: "zfs", root: "tank/mmagent" }, { name: VOL, profile: "db" }),
        params: ["MMAGENT_ROOT", "MMAGENT_ZFS_PROPERTIES"],
    },
    {
        script: "storage",
        action: "snapshot",
        base: () => snapshotParams({ backend: "btrfs", root: loop.mountPoint, keepSnapshots: 3 }, [VOL], { container: "", image: "app:1" }, SNAP),
        params: ["MMAGENT_VOLUMES", "MMAGENT_SNAPSHOT", "MMAGENT_KEEP", "MMAGENT_CONTAINER", "MMAGENT_NEXT_IMAGE", "MMAGENT_PROTECT"],
    },
    {
        script: "storage",
        action: "restore",
        base: () => restoreParams({ backend: "btrfs", root: loop.mountPoint }, [VOL], { container: "", image: "app:1", restoreFrom: SNAP }),
        params: ["MMAGENT_VOLUMES", "MMAGENT_SNAPSHOT", "MMAGENT_CONTAINER", "MMAGENT_EXPECT_IMAGE"],
    },
    {
        script: "storage",
        action: "list",
        base: () => ({ MMAGENT_ACTION: "list", MMAGENT_BACKEND: "btrfs", MMAGENT_ROOT: loop.mountPoint, MMAGENT_VOLUMES: VOL }),
        params: ["MMAGENT_VOLUMES"],
    },
    {
        // Real docker: read-only, and every name is checked before docker sees it.
        script: "status",
        action: "status",
        base: () => ({ MMAGENT_CONTAINERS: "inj-none-a inj-none-b" }),
        params: ["MMAGENT_CONTAINERS"],
    },
    {
        script: "proxy-config",
        action: "proxy config",
        base: () => proxyConfigParams({ configDir: proxyConfigDir, containerName: "inj-proxy", image: "caddy:2", adminApi: "loopback", config: { apps: {} } }),
        params: ["MMAGENT_CONFIG_DIR", "MMAGENT_MOUNT", "MMAGENT_CONFIG", "MMAGENT_CONTAINER", "MMAGENT_IMAGE", "MMAGENT_RELOAD", "MMAGENT_ADMIN"],
    },
    {
        script: "proxy-config",
        action: "proxy config (haproxy)",
        base: () => proxyConfigParams({ configDir: proxyConfigDir, containerName: "inj-proxy", image: "haproxy:2", adminApi: "loopback", engine: "haproxy", config: "global\n" }),
        params: ["MMAGENT_ENGINE", "MMAGENT_CONFIG", "MMAGENT_RELOAD"],
    },
    {
        script: "proxy-config",
        action: "proxy config (haproxy, certificates)",
        base: () =>
            proxyConfigParams({ configDir: proxyConfigDir, containerName: "inj-proxy", image: "haproxy:2", adminApi: "loopback", engine: "haproxy", config: "global\n", certBundles: [PEM_BUNDLE] }),
        params: ["MMAGENT_CERTS", "MMAGENT_CERT_1"],
    },
];

describe("2. every parameter of every host script, validation bypassed", () => {
    test("the valid base parameters work (so a refusal below is the payload's doing)", () => {
        for (const c of SCRIPT_CASES.filter((x) => !x.action.includes("zfs"))) {
            const r = runScript(c.script, c.base());
            expect({ action: c.action, status: r.status, stderr: r.stderr }).toEqual({ action: c.action, status: 0, stderr: expect.any(String) });
        }
    });

    test.each(SCRIPT_CASES.map((c) => [c.action, c] as const))("%s: every payload in every parameter is refused by name or inert; no canary", (_action, c) => {
        const outcomes: string[] = [];
        for (const param of c.params) {
            const values: [string, string | Buffer][] = [...CORPUS.map((p) => [p.name, p.value] as [string, string]), ...RAW.map((p) => [p.name, p.bytes] as [string, Buffer])];
            for (const [name, value] of values) {
                if (typeof value === "string" && value.includes("\0")) {
                    // The renderer refuses a NUL before anything reaches a host.
                    expect(() => renderScriptStdin(c.script, { ...c.base(), [param]: value })).toThrow(`host script parameter ${param} contains a NUL byte`);
                    continue;
                }
                const r = runScript(c.script, { ...c.base(), [param]: value });
                if (canaryAppeared()) outcomes.push(`EXECUTED ${param} <- ${name}`);
                else if (r.status !== 0 && !r.stderr.includes(param)) outcomes.push(`refused without naming ${param} <- ${name}: ${r.stderr.trim().split("\n").pop()}`);
                tally.scriptRuns++;
                if (r.status === 0) tally.inert.push(`${c.action} ${param} <- ${name}`);
            }
        }
        expect(outcomes).toEqual([]);
    });

    test("a glob in a list parameter is refused, not expanded against the working directory", () => {
        const r = runScript("storage", { ...snapshotParams({ backend: "btrfs", root: loop.mountPoint, keepSnapshots: 3 }, ["*"], { container: "", image: "app:1" }, SNAP) });
        expect(r.status).not.toBe(0);
        expect(r.stderr).toContain("invalid MMAGENT_VOLUMES (space-separated volume names): '\\*'");
    });
});

/** Where a user string enters the config, and the key path a refusal must name. */
const CONFIG_TARGETS: { key: string; set: (c: any, p: string) => void }[] = [
    { key: "namePrefix", set: (c, p) => (c.namePrefix = p) },
    { key: "storage.root", set: (c, p) => (c.storage.root = p) },
    { key: "storage.root", set: (c, p) => Object.assign(c.storage, { backend: "zfs", root: p }) },
    { key: "storage.quotasGiB", set: (c, p) => (c.storage.quotasGiB = { [p]: 1 }) },
    { key: "services.agent.extraVolumes[0].name", set: (c, p) => (c.services.agent.extraVolumes = [{ name: p, profile: "text", target: "/extra" }]) },
    { key: "services.agent.image", set: (c, p) => (c.services.agent.image = p) },
    { key: "services.cache.image", set: (c, p) => (c.services.cache = { image: p }) },
    { key: "proxy.image", set: (c, p) => (c.proxy = { image: p }) },
    { key: "services.agent.restoreFrom", set: (c, p) => (c.services.agent.restoreFrom = p) },
    { key: "services.agent.host", set: (c, p) => (c.services.agent.host = p) },
    { key: "host.toolkitVersion", set: (c, p) => (c.host.toolkitVersion = p) },
    { key: "host.gpus", set: (c, p) => (c.host.gpus = [p]) },
    { key: "host.gpuSmokeTestImage", set: (c, p) => (c.host.gpuSmokeTestImage = p) },
    { key: "host.sysctls", set: (c, p) => (c.host.sysctls = { [p]: "1" }) },
    { key: "host.sysctls.vm.swappiness", set: (c, p) => (c.host.sysctls = { "vm.swappiness": p }) },
    { key: "host.connection.host", set: (c, p) => (c.host.connection = { kind: "ssh", host: p, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJFUExBQ0UtVEhJUy1XSVRILVlPVVItSE9TVFMtS0VZ" }) },
    { key: "host.connection.user", set: (c, p) => (c.host.connection = { kind: "ssh", host: "gpu1", user: p, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJFUExBQ0UtVEhJUy1XSVRILVlPVVItSE9TVFMtS0VZ" }) },
    { key: "services.agent.cpuSet", set: (c, p) => (c.services.agent.cpuSet = p) },
];

const tally = { configCases: 0, refusedByConfig: 0, acceptedByConfig: 0, scriptRuns: 0, inert: [] as string[] };

describe("1. every config key whose value reaches a host", () => {
    const base = () => ({
        host: { connection: { kind: "local" }, gpus: "all" },
        storage: { backend: "btrfs", root: "/srv/mmagent" },
        services: { agent: { host: "agent.localhost" } },
    });

    test.each(CONFIG_TARGETS.map((t, i) => [`${t.key}#${i}`, t] as const))("%s: each payload refused naming the key, or inert on the real scripts", (_k, target) => {
        const outcomes: string[] = [];
        for (const p of CORPUS) {
            const raw: any = base();
            target.set(raw, p.value);
            tally.configCases++;
            let config;
            try {
                config = parseStackConfig(raw, { stackName: "inj", projectDir: "/proj", hasSshPrivateKey: true });
            } catch (e) {
                if (!pulumi.InputPropertiesError.isInstance(e)) throw e;
                const paths = e.errors.map((x) => x.propertyPath);
                if (!paths.some((x) => x === `mmagent:${target.key}` || x.startsWith(`mmagent:${target.key}.`) || x.startsWith(`mmagent:${target.key}[`))) {
                    outcomes.push(`${p.name}: refused, but naming ${paths.join(", ")}`);
                }
                tally.refusedByConfig++;
                continue;
            }
            tally.acceptedByConfig++;
            // Accepted: run every script step the program would run with it, for real.
            const params = [
                { script: "prepare-host" as const, params: { ...prepareHostParams({ ...config.host, gpus: "none" }), MMAGENT_HOST_ROOT: hostRoot } },
                ...planVolumes(config).map((v) => ({ script: "storage" as const, params: ensureParams({ backend: "btrfs", root: loop.mountPoint }, v) })),
                ...Object.values(planGuards(config)).map((g) => ({ script: "storage" as const, params: snapshotParams({ backend: "btrfs", root: loop.mountPoint }, [VOL], g, SNAP) })),
            ].filter((s) => Object.values(s.params).some((v) => v.includes(CANARY)));
            for (const s of params) {
                runScript(s.script, s.params);
                if (canaryAppeared()) outcomes.push(`${p.name}: EXECUTED on the host`);
            }
        }
        expect(outcomes).toEqual([]);
    });
});

describe("3. totals", () => test("counts", () => {
    const payloadCount = CORPUS.length + RAW.length;
    const params = SCRIPT_CASES.reduce((n, c) => n + c.params.length, 0);
    console.log(
        `injection: ${payloadCount} payloads; config: ${CORPUS.length} × ${CONFIG_TARGETS.length} keys = ${tally.configCases} cases ` +
            `(${tally.refusedByConfig} refused naming the key, ${tally.acceptedByConfig} accepted and run inertly); ` +
            `scripts: ${payloadCount} × ${params} parameters = ${tally.scriptRuns} real runs (${tally.inert.length} inert, the rest refused by name); canary never created`,
    );
    if (tally.inert.length > 0) console.log(`inert (accepted as data, nothing executed):\n  ${tally.inert.join("\n  ")}`);
    expect(payloadCount).toBeGreaterThanOrEqual(30);
    expect(tally.configCases).toBe(CORPUS.length * CONFIG_TARGETS.length);
}));
