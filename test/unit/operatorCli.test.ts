/**
 * The operator CLI's pure parts (cli/): the status report from what the host scripts print,
 * its table and Prometheus renderings, the rollback plan and its refusals, argument parsing, and
 * reading a stack's config file the way the program reads it. The host side is tested for real in
 * test/real/operatorCli.test.ts.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseStackConfig, proxyImage, RawStackConfig, StackConfig } from "../../components/config";
import { main, parseArgs } from "../../cli/mmagent";
import { configAfter, planRollback, rollbackVolumes } from "../../cli/rollback";
import { chooseStack, readStackFiles } from "../../cli/stackFiles";
import { EngineListing, growthPerDay, ListedSnapshot, ListedVolume, registryDigest, renderPrometheus, renderTable, repositoryOf, StorageListing, summarizeStatus } from "../../cli/status";
import { REPO_ROOT } from "../support/mockProgram";

const NOW = Date.parse("2026-11-24T12:00:00Z");
const DAY = 86_400_000;
const GIB = 1024 ** 3;

function config(raw: RawStackConfig = {}): StackConfig {
    return parseStackConfig({ storage: { backend: "btrfs", root: "/srv/mm" }, ...raw }, { stackName: "tt", projectDir: "/proj", hasSshPrivateKey: false });
}

function snap(name: string, daysAgo: number, bytes: number | null, extra: Partial<ListedSnapshot> = {}): ListedSnapshot {
    return { name, createdAt: new Date(NOW - daysAgo * DAY).toISOString(), image: "app:1", imageId: "sha256:aaa", imageDigest: "", nextImage: "app:2", bytes, ...extra };
}

function volume(extra: Partial<ListedVolume> = {}): ListedVolume {
    return { path: "/srv/mm/x", exists: true, usedBytes: 1000, quotaBytes: null, restoredFrom: "", snapshots: [], ...extra };
}

function listing(c: StackConfig, volumes: Record<string, Partial<ListedVolume>> = {}, backend: StorageListing["backend"] = "btrfs"): StorageListing {
    const all: Record<string, ListedVolume> = {};
    for (const name of ["proxy-data", "proxy-config", "inference-models", "agent-db", "agent-uploads", "agent-input", "agent-output", "agent-logs", "cache-data"]) {
        all[name] = volume({ path: `${c.storage.root}/${name}`, ...(volumes[name] ?? {}) });
    }
    return { requested: c.storage.backend, backend, root: c.storage.root, volumes: all };
}

function engine(c: StackConfig, overrides: Record<string, Partial<EngineListing["containers"][number]["State"]> & { image?: string }> = {}, driver = "overlay2"): EngineListing {
    const names = { inference: c.services.inference.image, agent: c.services.agent.image, cache: c.services.cache.image, proxy: proxyImage(c) };
    return {
        driver,
        dockerVersion: "28.5.2",
        containers: Object.entries(names).map(([role, image]) => {
            const o = overrides[role] ?? {};
            return {
                Name: `/tt-${role}`,
                Image: `sha256:${role}`,
                Config: { Image: o.image ?? image },
                State: { Status: o.Status ?? "running", Running: o.Running ?? true, StartedAt: "2026-11-24T11:00:00Z", Health: { Status: o.Health?.Status ?? "healthy" } },
            };
        }),
        images: [{ Id: "sha256:cache", RepoDigests: [`redis@sha256:${"c".repeat(64)}`] }],
        missing: [],
    };
}

describe("status report", () => {
    test("a healthy stack: exit 0, digests from RepoDigests, no findings", () => {
        const c = config();
        const r = summarizeStatus(c, engine(c), listing(c), { stack: "t", now: NOW });
        expect(r.ok).toBe(true);
        expect(r.findings).toEqual([]);
        expect(r.services.map((s) => s.container)).toEqual(["tt-inference", "tt-agent", "tt-cache", "tt-proxy"]);
        expect(r.services.find((s) => s.role === "cache")!.imageDigest).toBe(`redis@sha256:${"c".repeat(64)}`);
        expect(r.services.find((s) => s.role === "agent")!.imageDigest).toBe("");
        expect(renderTable(r)).toContain("ok: nothing needs attention");
    });

    test.each([
        ["unhealthy", { agent: { Health: { Status: "unhealthy" } } }, /tt-agent: unhealthy/],
        ["exited", { cache: { Status: "exited", Running: false } }, /tt-cache: not running \(exited\)/],
    ])("a container %s is a problem: exit 1", (_n, o, message) => {
        const c = config();
        const r = summarizeStatus(c, engine(c, o as never), listing(c), { stack: "t", now: NOW });
        expect(r.ok).toBe(false);
        expect(r.findings.map((f) => `${f.level} ${f.subject}: ${f.message}`).join("\n")).toMatch(message);
    });

    test("a missing container is a problem; image drift and a non-overlay2 driver are warnings only", () => {
        const c = config();
        const e = engine(c, { agent: { image: "other:9" } }, "vfs");
        e.containers = e.containers.filter((x) => x.Name !== "/tt-proxy");
        e.missing = ["tt-proxy"];
        const r = summarizeStatus(c, e, listing(c), { stack: "t", now: NOW });
        expect(r.findings).toEqual([
            { level: "warning", subject: "tt-agent", message: `runs other:9, the config says ${c.services.agent.image}: an \`up\` is pending` },
            { level: "problem", subject: "tt-proxy", message: "no such container: run `pulumi up`" },
            { level: "warning", subject: "docker", message: expect.stringContaining("storage driver is vfs, not overlay2") },
        ]);
        expect(r.ok).toBe(false);
    });

    test("a volume at the threshold is a problem (default 85%, configurable); below it is not", () => {
        const c = config();
        const at = (pct: number, threshold?: number) =>
            summarizeStatus(c, engine(c), listing(c, { "agent-db": { usedBytes: (pct / 100) * GIB, quotaBytes: GIB } }), { stack: "t", now: NOW, thresholdPercent: threshold });
        expect(at(84.9).ok).toBe(true);
        expect(at(85).findings).toEqual([{ level: "problem", subject: "agent-db", message: "85.0% of its quota used (threshold 85%)" }]);
        expect(at(50, 40).ok).toBe(false);
        expect(at(50).volumes.find((v) => v.name === "agent-db")).toMatchObject({ quotaSource: "host", usedPercent: 50 });
    });

    test("growth: least squares over the snapshot sizes and now; days until the quota", () => {
        // 100 MiB a day for 4 days, now at 500 MiB of 1 GiB: (1024 - 500) / 100 = 5.24 days.
        const MiB = 1024 ** 2;
        const c = config();
        const snaps = [snap("mmagent-pre-0001", 4, 100 * MiB), snap("mmagent-pre-0002", 3, 200 * MiB), snap("mmagent-pre-0003", 1, 400 * MiB)];
        const r = summarizeStatus(c, engine(c), listing(c, { "agent-db": { usedBytes: 500 * MiB, quotaBytes: GIB, snapshots: snaps } }), { stack: "t", now: NOW });
        const v = r.volumes.find((x) => x.name === "agent-db")!;
        expect(v.growthBytesPerDay! / MiB).toBeCloseTo(100, 6);
        expect(v.daysUntilFull).toBeCloseTo(5.24, 6);
        expect(v).toMatchObject({ snapshotCount: 3, latestSnapshot: snaps[2], oldestSnapshot: snaps[0] });
        // Shrinking or flat: no date; one point: no growth.
        expect(growthPerDay([{ at: 0, bytes: 10 }, { at: DAY, bytes: 5 }])).toBeCloseTo(-5);
        expect(growthPerDay([{ at: 0, bytes: 10 }])).toBeNull();
        // Minutes of history extrapolated to a day would say "full today" after any burst of writes.
        expect(growthPerDay([{ at: 0, bytes: 10 }, { at: 59 * 60_000, bytes: 10_000_000 }])).toBeNull();
        const flat = summarizeStatus(c, engine(c), listing(c, { "agent-db": { usedBytes: 100, quotaBytes: GIB, snapshots: [snap("mmagent-pre-0001", 1, 100)] } }), { stack: "t", now: NOW });
        expect(flat.volumes.find((x) => x.name === "agent-db")!.daysUntilFull).toBeNull();
        // Snapshots from before sizes were recorded count only through "now".
        const old = summarizeStatus(c, engine(c), listing(c, { "agent-db": { snapshots: [snap("mmagent-pre-0001", 1, null)] } }), { stack: "t", now: NOW });
        expect(old.volumes.find((x) => x.name === "agent-db")!.growthBytesPerDay).toBeNull();
    });

    test("the dir backend: the declared quota is used (marked), and a warning that nothing is snapshotted", () => {
        const c = config({ storage: { backend: "dir", root: "/srv/mm", quotasGiB: { "agent-db": 2 } } });
        const r = summarizeStatus(c, engine(c), listing(c, { "agent-db": { usedBytes: GIB } }, "dir"), { stack: "t", now: NOW });
        expect(r.volumes.find((v) => v.name === "agent-db")).toMatchObject({ quotaBytes: 2 * GIB, quotaSource: "config", usedPercent: 50 });
        expect(r.findings).toEqual([{ level: "warning", subject: "storage", message: "backend dir (configured): no snapshots before image changes" }]);
        expect(renderTable(r)).toContain("* declared in config; the dir backend does not enforce it");
    });

    test("a configured restoreFrom not applied yet is pending; applied, it is not", () => {
        const c = config({ services: { agent: { restoreFrom: "mmagent-pre-00ab" } } });
        const pending = summarizeStatus(c, engine(c), listing(c), { stack: "t", now: NOW });
        expect(pending.volumes.filter((v) => v.pendingRestore).map((v) => v.name)).toEqual(["agent-db", "agent-uploads", "agent-output", "agent-logs"]);
        expect(pending.ok).toBe(true);
        const done = Object.fromEntries(["agent-db", "agent-uploads", "agent-output", "agent-logs"].map((n) => [n, { restoredFrom: "mmagent-pre-00ab" }]));
        expect(summarizeStatus(c, engine(c), listing(c, done), { stack: "t", now: NOW }).volumes.some((v) => v.pendingRestore)).toBe(false);
    });

    test("nothing deployed: one problem instead of one per container and volume", () => {
        const c = config();
        const e: EngineListing = { driver: "overlay2", dockerVersion: "28", containers: [], images: [], missing: ["tt-agent"] };
        const l = listing(c);
        for (const v of Object.values(l.volumes)) Object.assign(v, { exists: false, usedBytes: null });
        const r = summarizeStatus(c, e, l, { stack: "t", now: NOW });
        expect(r.findings).toEqual([{ level: "problem", subject: "stack", message: "nothing of stack t is on this host (no container, no volume): deploy it with `pulumi up`" }]);
    });

    test("Prometheus textfile: HELP and TYPE once per metric, escaped labels, parseable samples", () => {
        const c = config();
        const r = summarizeStatus(c, engine(c, { agent: { Health: { Status: "unhealthy" } } }), listing(c, { "agent-db": { usedBytes: GIB / 2, quotaBytes: GIB, snapshots: [snap("mmagent-pre-0001", 1, 1)] } }), {
            stack: 'we"ird\\',
            now: NOW,
        });
        const text = renderPrometheus(r);
        const lines = text.trimEnd().split("\n");
        const sample = /^([a-z_]+)\{((?:[a-z_]+="(?:[^"\\]|\\.)*",?)*)\} (-?[0-9.e+-]+)$/;
        for (const l of lines) expect(l.startsWith("# HELP ") || l.startsWith("# TYPE ") || sample.test(l)).toBe(true);
        const types = lines.filter((l) => l.startsWith("# TYPE ")).map((l) => l.split(" ")[2]);
        expect(new Set(types).size).toBe(types.length);
        expect(text).toContain('mmagent_container_healthy{stack="we\\"ird\\\\",role="agent",container="tt-agent"} 0');
        expect(text).toContain('mmagent_volume_used_ratio{stack="we\\"ird\\\\",volume="agent-db",service="tt-agent"} 0.5');
        expect(text).toContain('mmagent_status_problems{stack="we\\"ird\\\\"} 1');
    });

    test("references: repository and registry digest as Docker Hub shortens them", () => {
        expect(repositoryOf("docker.io/library/redis:7.4@sha256:abc")).toBe("redis");
        expect(repositoryOf("localhost:5000/team/app:1")).toBe("localhost:5000/team/app");
        expect(repositoryOf("localhost:5000/app")).toBe("localhost:5000/app");
        expect(registryDigest("redis:7", ["redis@sha256:1", "other@sha256:2"])).toBe("redis@sha256:1");
        expect(registryDigest("ghcr.io/o/a:1", ["redis@sha256:1"])).toBe("");
        expect(registryDigest("local/app:1", null)).toBe("");
    });
});

describe("rollback plan", () => {
    const c = config();
    const DIGEST = `ghcr.io/open-webui/open-webui@sha256:${"d".repeat(64)}`;
    const agentVolumes = rollbackVolumes(c, "agent");
    const withSnaps = (snaps: ListedSnapshot[], only?: string[]) =>
        listing(c, Object.fromEntries((only ?? agentVolumes).map((v) => [v, { snapshots: snaps }])));

    test("the agent's writable volumes, not its read-only input", () => {
        expect(agentVolumes).toEqual(["agent-db", "agent-uploads", "agent-output", "agent-logs"]);
    });

    test("latest pre-change snapshot by default; the image by its registry digest", () => {
        const snaps = [
            snap("mmagent-pre-0001", 3, 1, { imageDigest: DIGEST }),
            snap("mmagent-pre-0002", 1, 1, { image: "ghcr.io/open-webui/open-webui:v0.6.33", imageDigest: DIGEST }),
            snap("mmagent-replaced-20261124t000000-abcd", 0, 1),
        ];
        const p = planRollback(c, "agent", withSnaps(snaps));
        expect(p.snapshot.name).toBe("mmagent-pre-0002");
        expect(p.configSets).toEqual([
            { key: "mmagent:services.agent.image", value: DIGEST },
            { key: "mmagent:services.agent.restoreFrom", value: "mmagent-pre-0002" },
        ]);
        expect(p.notes).toEqual([]);
        // The result passes the program's own validation.
        const after = configAfter({ storage: { backend: "btrfs", root: "/srv/mm" } }, p, { stackName: "tt", projectDir: "/proj", hasSshPrivateKey: false });
        expect(after.services.agent).toMatchObject({ image: DIGEST, restoreFrom: "mmagent-pre-0002" });
    });

    test("a named snapshot, also one a restore set aside; an image built on the host is pinned by reference with a note", () => {
        const snaps = [snap("mmagent-pre-0001", 3, 1), snap("mmagent-replaced-20261124t000000-abcd", 1, 1, { image: "local/agent:2", imageId: "sha256:bbb" })];
        const p = planRollback(c, "agent", withSnaps(snaps), "mmagent-replaced-20261124t000000-abcd");
        expect(p.image).toBe("local/agent:2");
        expect(p.notes).toEqual(["local/agent:2 has no registry digest (built on the host): pinned by reference; the restore checks that it is still image sha256:bbb"]);
    });

    test.each([
        ["an unknown role", () => planRollback(c, "agents", withSnaps([])), 'unknown role "agents": one of inference, agent, cache, vectorDb'],
        ["a disabled service", () => planRollback(c, "vectorDb", withSnaps([])), "services.vectorDb is disabled in this stack: there is nothing to roll back"],
        [
            "a host that resolved to plain directories",
            () => planRollback(config({ storage: { backend: "auto", root: "/srv/mm" } }), "agent", { ...withSnaps([]), requested: "auto", backend: "dir" }),
            "storage.backend auto found neither Btrfs nor ZFS at /srv/mm: this host takes no snapshots, so there is nothing to roll back to",
        ],
        ["a snapshot that is not this project's", () => planRollback(c, "agent", withSnaps([]), "manual-before-upgrade"), '"manual-before-upgrade" is not a snapshot of this project'],
        [
            "a snapshot missing on one of the service's volumes",
            () => planRollback(c, "agent", withSnaps([snap("mmagent-pre-0001", 1, 1)], ["agent-db", "agent-uploads", "agent-output"]), "mmagent-pre-0001"),
            "snapshot mmagent-pre-0001 is not on agent-logs (pruned by retention, or another service's); snapshots of agent: none",
        ],
        ["no snapshot yet", () => planRollback(c, "agent", withSnaps([])), "agent has no pre-change snapshot on agent-db, agent-uploads, agent-output, agent-logs yet"],
        ["a snapshot taken with no container", () => planRollback(c, "agent", withSnaps([snap("mmagent-pre-0001", 1, 1, { image: "", imageId: "" })])), "records no image"],
    ])("refused: %s", (_n, f, message) => {
        expect(f).toThrow(message);
    });
});

describe("command line", () => {
    test("arguments: flags per command, values, refusals", () => {
        expect(parseArgs(["status", "--stack", "dev", "--json", "--threshold=90"])).toEqual({ command: "status", positional: [], flags: { stack: "dev", json: true, threshold: "90" } });
        expect(parseArgs(["rollback", "agent", "mmagent-pre-0001", "--yes"])).toEqual({ command: "rollback", positional: ["agent", "mmagent-pre-0001"], flags: { yes: true } });
        expect(() => parseArgs(["status", "--yes"])).toThrow("unknown option --yes for status");
        expect(() => parseArgs(["status", "--stack"])).toThrow("--stack needs a value");
        expect(() => parseArgs(["destroy"])).toThrow('unknown command "destroy"');
        expect(parseArgs([]).command).toBe("help");
    });

    async function cli(argv: string[], cwd: string): Promise<{ code: number; out: string; err: string }> {
        let out = "";
        let err = "";
        const code = await main(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t), cwd, env: {}, now: () => NOW });
        return { code, out, err };
    }

    test("usage errors exit 2 with one line, before any host is touched", async () => {
        expect(await cli(["status", "--threshold", "0", "--stack", "dev"], REPO_ROOT)).toMatchObject({ code: 2, err: "mmagent: --threshold must be a percentage from 1 to 100 (got 0)\n" });
        expect(await cli(["status"], REPO_ROOT)).toMatchObject({ code: 2, err: "mmagent: name the stack with --stack (stacks here: dev, prod)\n" });
        expect(await cli(["status", "--stack", "qa"], REPO_ROOT)).toMatchObject({ code: 2, err: expect.stringContaining("no Pulumi.qa.yaml") });
        expect(await cli(["rollback", "vectorDb", "--stack", "dev"], REPO_ROOT)).toMatchObject({ code: 2, err: "mmagent: services.vectorDb is disabled in this stack: there is nothing to roll back\n" });
        expect(await cli(["status", "--stack", "dev"], os.tmpdir())).toMatchObject({ code: 2, err: expect.stringContaining("no Pulumi.yaml") });
        expect(await cli(["rollback", "agent", "before-upgrade", "--stack", "dev"], REPO_ROOT)).toMatchObject({ code: 2, err: expect.stringContaining('"before-upgrade" is not a snapshot of this project') });
    });

    test("the stack files are read as the program reads them: the repo's dev and prod stacks", () => {
        const dev = readStackFiles(REPO_ROOT, "dev", {});
        expect(dev.config.namePrefix).toBe("dev");
        expect(dev.config.storage.root).toBe(path.join(REPO_ROOT, ".mmagent-data/dev"));
        // The prod stack's key is a secret only the Pulumi CLI decrypts: --identity stands in.
        expect(() => readStackFiles(REPO_ROOT, "prod", {})).toThrow("mmagent:sshPrivateKey: an ssh connection needs the private key");
        const prod = readStackFiles(REPO_ROOT, "prod", {}, { identityFile: "/keys/deploy" });
        expect(prod.config.host.connection).toMatchObject({ kind: "ssh", host: "gpu1.example.com", user: "deploy" });
        expect(prod.config.services.cache.image).toBe("redis:7.4.6-alpine");
    });

    test("a bad stack file: the program's config error, naming the key", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cli-stack-"));
        try {
            fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: mmagent\nruntime: nodejs\n");
            fs.writeFileSync(path.join(dir, "Pulumi.qa.yaml"), "config:\n  mmagent:storage:\n    backend: tape\n  mmagent:colour: blue\n");
            expect(chooseStack(dir, undefined)).toBe("qa");
            expect(() => readStackFiles(dir, "qa", {})).toThrow(/colour: unknown key/);
            fs.writeFileSync(path.join(dir, "Pulumi.qa.yaml"), "config:\n  mmagent:storage:\n    backend: tape\n");
            expect(() => readStackFiles(dir, "qa", {})).toThrow(/storage\.backend/);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
