/**
 * The whole dev stack on a real Docker engine: the real index.ts with Pulumi.dev.yaml (local
 * test-double images, Btrfs storage on a loop device) applied by the real-engine harness, then
 * served, crashed, upgraded behind its pre-change snapshot, restored, and torn down.
 *
 * The harness stands in for the Pulumi engine (see test/support/realEngineHarness.ts for what
 * that proves and what it does not); everything else here is real: the engine, the network,
 * Btrfs, the host scripts, HAProxy (the engine for tls internal) with the certificates of the TLS
 * provider's fake (real openssl), Redis, and HTTPS through the published port on 127.0.0.1.
 */
import { spawnSync } from "child_process";
import Docker from "dockerode";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { BtrfsLoop, requirePrerequisites, runHostScript, sh } from "../support/host";
import { decodeScriptParams, REPO_ROOT } from "../support/mockProgram";
import { buildE2eImages, E2E_AGENT_HOST, E2E_HTTP_PORT, E2E_HTTPS_PORT, E2E_IMAGES, E2E_NETWORK, E2E_PREFIX, e2eStackConfig } from "../support/e2eStack";
import { reveal } from "../support/secrets";
import { hostRunner } from "../../cli/hostRun";
import { planRollback } from "../../cli/rollback";
import { collectStatus, summarizeStatus } from "../../cli/status";
import { parseStackConfig, RawStackConfig } from "../../components/config";
import { ApplyResult, plainStrings, RealEngineHarness } from "../support/realEngineHarness";
import { containerEvents as engineEvents, removeStackLeftovers, treeListing, untilTrue, viaProxy as viaProxyTo } from "../support/e2eHelpers";

jest.setTimeout(300_000);

const docker = new Docker();
const CONTAINERS = ["proxy", "inference", "agent", "cache"].map((r) => `${E2E_PREFIX}-${r}`);
const AGENT = `${E2E_PREFIX}-agent`;
const CONTAINER_TYPE = "docker:index/container:Container";
const COMMAND_TYPE = "command:local:Command";

let loop: BtrfsLoop;
let harness: RealEngineHarness;
let first: ApplyResult;
let volumePaths: Record<string, string>;

/** The stack's CA certificate (output `proxyCaCertificate`), in a file for curl's --cacert. */
const CA_FILE = path.join(os.tmpdir(), `mmagent-e2e-ca-${process.pid}.pem`);
const proxy = () => ({ caFile: CA_FILE, host: E2E_AGENT_HOST, httpsPort: E2E_HTTPS_PORT });
const viaProxy = (urlPath: string, opts: { data?: string } = {}) => viaProxyTo(proxy(), urlPath, opts);

const health = async (name: string) => (await docker.getContainer(name).inspect()).State.Health?.Status;

const AGENT_DATA = ["agent-db", "agent-output"];
const agentData = (paths: Record<string, string>) => AGENT_DATA.flatMap((v) => treeListing(paths[v]).map((l) => `${v}/${l}`));

const containerEvents = (name: string, sinceMs: number, untilMs: number) => engineEvents(docker, name, sinceMs, untilMs);

beforeAll(async () => {
    requirePrerequisites({ commands: ["btrfs", "mkfs.btrfs", "lsattr", "curl"], docker: true, image: true, root: true });
    await removeStackLeftovers(docker, E2E_PREFIX, E2E_NETWORK);
    await buildE2eImages(docker);
    loop = new BtrfsLoop(1024).create();
    harness = new RealEngineHarness(docker);
    first = await harness.apply({ stack: "e2e", config: e2eStackConfig({ storageRoot: loop.mountPoint }) });
    volumePaths = first.outputs.volumePaths;
    fs.writeFileSync(CA_FILE, first.outputs.proxyCaCertificate);
    console.log(`dev stack applied to the real engine: ${first.operations.length} resources in ${(first.durationMs / 1000).toFixed(1)} s`);
});

afterAll(async () => {
    await harness?.destroy().catch(() => undefined);
    loop?.destroy();
    fs.rmSync(CA_FILE, { force: true });
});

test("every container is healthy, hardened, and on the stack's IPv6 network", async () => {
    for (const name of CONTAINERS) {
        const c = await docker.getContainer(name).inspect();
        expect({ name, health: c.State.Health?.Status }).toEqual({ name, health: "healthy" });
        expect(c.HostConfig).toMatchObject({ CapDrop: ["ALL"], SecurityOpt: ["no-new-privileges:true"], Privileged: false, RestartPolicy: { Name: "unless-stopped" } });
        expect(c.Mounts.map((m) => m.Source).join(" ")).not.toContain("docker.sock");
        const endpoint = c.NetworkSettings.Networks[E2E_NETWORK];
        expect(endpoint.GlobalIPv6Address).toMatch(/^fd6d:6d61:6765:e2e:/);
        expect(endpoint.IPAddress).toMatch(/^172\.16\.222\./);
    }
    const proxy = await docker.getContainer(`${E2E_PREFIX}-proxy`).inspect();
    const published = Object.values(proxy.HostConfig.PortBindings ?? {}).flat() as { HostIp: string; HostPort: string }[];
    expect(published.map((b) => `${b.HostIp}:${b.HostPort}`).sort()).toEqual([`127.0.0.1:${E2E_HTTP_PORT}`, `127.0.0.1:${E2E_HTTPS_PORT}`]);
});

test("a second apply reads every resource back from the engine and changes nothing", async () => {
    // `pulumi up --refresh`: each provider fake's Read, then its diff against the program's inputs.
    const second = await harness.apply({ stack: "e2e", config: e2eStackConfig({ storageRoot: loop.mountPoint }), refresh: true });
    console.log(`second apply: ${second.changes.length} changes${second.changes.map((c) => `\n  ${c}`).join("")}`);
    expect(second.changes).toEqual([]);
});

test("after a Docker daemon restart, a refresh finds nothing drifted (network gateways, capabilities, memory swap)", async () => {
    const restart = spawnSync("bash", [path.join(REPO_ROOT, "scripts/test-host.sh"), "restart-engine"], { encoding: "utf8", timeout: 120_000 });
    expect({ status: restart.status, stderr: restart.status === 0 ? "" : restart.stderr }).toEqual({ status: 0, stderr: "" });
    for (const name of CONTAINERS) await untilTrue(`${name} healthy after the restart`, 90, async () => (await health(name).catch(() => undefined)) === "healthy");
    const after = await harness.apply({ stack: "e2e", config: e2eStackConfig({ storageRoot: loop.mountPoint }), refresh: true });
    console.log(`after daemon restart: ${after.changes.length} changes${after.changes.map((c) => `\n  ${c}`).join("")}`);
    expect(after.changes).toEqual([]);
    // What the daemon filled in is what the program declared.
    const net = await docker.getNetwork(E2E_NETWORK).inspect();
    expect((net.IPAM?.Config ?? []).map((c: any) => `${c.Subnet} via ${c.Gateway}`).sort()).toEqual(["172.16.222.0/24 via 172.16.222.1", "fd6d:6d61:6765:e2e::/64 via fd6d:6d61:6765:e2e::1"]);
});

test("stopping any service for its snapshot takes at most 1 s: SIGTERM reaches it through init, no SIGKILL", async () => {
    const stops: string[] = [];
    for (const entry of harness.entries(COMMAND_TYPE).filter((e) => e.name.endsWith("-pre-change"))) {
        const params = decodeScriptParams(reveal<string>(entry.inputs.stdin));
        const container = params.MMAGENT_CONTAINER;
        const t0 = Date.now();
        const r = runHostScript("storage", { ...params, MMAGENT_SNAPSHOT: `mmagent-pre-stop${stops.length}test` });
        expect({ container, status: r.status, stderr: r.status === 0 ? "" : r.stderr }).toEqual({ container, status: 0, stderr: "" });
        const events = await containerEvents(container, t0, Date.now());
        const term = events.find((e) => e.action === "kill" && e.signal === "15");
        const died = events.find((e) => e.action === "die");
        expect({ container, term: !!term, died: !!died, sigkill: events.some((e) => e.action === "kill" && e.signal === "9") }).toEqual({ container, term: true, died: true, sigkill: false });
        const ms = (died!.timeNano - term!.timeNano) / 1e6;
        stops.push(`${container} ${ms.toFixed(0)} ms (grace ${params.MMAGENT_STOP_TIMEOUT} s)`);
        expect({ container, within1s: ms <= 1000 }).toEqual({ container, within1s: true });
        await untilTrue(`${container} healthy again`, 90, async () => (await health(container)) === "healthy");
    }
    console.log(`stop for a snapshot, SIGTERM to exit: ${stops.join(", ")}`);
    expect(stops).toHaveLength(CONTAINERS.length);
});

test("the proxy on 127.0.0.1 answers for the agent's host name with the agent, which reaches inference and the cache by name", async () => {
    let check = viaProxy("/cgi-bin/check");
    // The agent may still be starting behind the proxy; allow it a few seconds.
    await untilTrue("agent through the proxy", 30, () => (check = viaProxy("/cgi-bin/check")).status === 200);
    expect(JSON.parse(check.body)).toEqual({ agent: "v1", inference: true, cache: "PONG", cacheWithoutPassword: "NOAUTH", schema: "1" });
    // Plain HTTP redirects to HTTPS; an unknown host name gets nothing from the agent.
    const http = spawnSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H", `Host: ${E2E_AGENT_HOST}`, `http://127.0.0.1:${E2E_HTTP_PORT}/`], { encoding: "utf8" });
    expect(http.stdout).toBe(`308 https://${E2E_AGENT_HOST}:${E2E_HTTPS_PORT}/`);
    const other = spawnSync("curl", ["-sk", "--max-time", "5", "--resolve", `other.localhost:${E2E_HTTPS_PORT}:127.0.0.1`, `https://other.localhost:${E2E_HTTPS_PORT}/cgi-bin/check`], { encoding: "utf8" });
    expect(other.stdout).not.toContain("agent");
});

test("a route change through `up` touches only the proxy's config step and the new host's certificate: the same proxy container loads the new route", async () => {
    const proxyBefore = await docker.getContainer(`${E2E_PREFIX}-proxy`).inspect();
    const models = { ...proxy(), host: "models.localhost" };
    const change = await harness.apply({
        stack: "e2e",
        config: e2eStackConfig({ storageRoot: loop.mountPoint, proxyRoutes: [{ host: "models.localhost", service: "inference", port: 11434, path: "/api/*" }] }),
    });
    // The config step, and the new host's key, request and certificate (signed by the same CA).
    expect(change.operations.filter((o) => o.op !== "same").map((o) => `${o.op} ${o.name}`).sort()).toEqual(
        [`replace ${E2E_PREFIX}-edge-routes`, ...["-key", "-request", ""].map((s) => `create ${E2E_PREFIX}-edge-cert-models.localhost${s}`)].sort(),
    );
    const proxyAfter = await docker.getContainer(`${E2E_PREFIX}-proxy`).inspect();
    expect({ id: proxyAfter.Id, startedAt: proxyAfter.State.StartedAt }).toEqual({ id: proxyBefore.Id, startedAt: proxyBefore.State.StartedAt });
    // The new host is routed (with its certificate from the internal CA) as soon as the step returns; the agent's route still works.
    const tags = viaProxyTo(models, "/api/tags");
    expect(tags.status).toBe(200);
    expect(JSON.parse(tags.body)).toHaveProperty("models");
    expect(viaProxy("/cgi-bin/check").status).toBe(200);

    // And back: the route is gone again, still the same container.
    const back = await harness.apply({ stack: "e2e", config: e2eStackConfig({ storageRoot: loop.mountPoint }) });
    expect(back.operations.filter((o) => o.op !== "same").map((o) => `${o.op} ${o.name}`).sort()).toEqual(
        [`replace ${E2E_PREFIX}-edge-routes`, ...["-key", "-request", ""].map((s) => `delete ${E2E_PREFIX}-edge-cert-models.localhost${s}`)].sort(),
    );
    expect((await docker.getContainer(`${E2E_PREFIX}-proxy`).inspect()).Id).toBe(proxyBefore.Id);
    expect(viaProxyTo(models, "/api/tags").body).not.toContain("models");
});

test("inside the containers: input is read-only, text output is writable, each database volume is its own tuned subvolume", async () => {
    fs.writeFileSync(path.join(volumePaths["agent-input"], "brief.txt"), "describe the attached image\n");
    const input = viaProxy("/cgi-bin/input");
    expect(input.body).toBe("describe the attached image\ninput: read-only\n");
    const exec = (cmd: string) => spawnSync("docker", ["exec", AGENT, "sh", "-c", cmd], { encoding: "utf8" });
    expect(exec("echo x >/input/probe").stderr).toContain("Read-only file system");

    const note = viaProxy("/cgi-bin/note", { data: "first note" });
    expect(note).toEqual({ status: 200, body: "1\n" });
    expect(fs.readFileSync(path.join(volumePaths["agent-output"], "note-1.txt"), "utf8")).toBe("first note\n");
    expect(exec("echo y >/output/probe && cat /output/probe").stdout).toBe("y\n");

    // A Btrfs subvolume's root directory is inode 256: inside the container the mount is the subvolume itself.
    expect(exec("stat -c %i /app/backend/data").stdout.trim()).toBe("256");
    for (const [vol, profile] of [["agent-db", "db"], ["cache-data", "cache"]]) {
        expect(sh("btrfs", ["subvolume", "show", volumePaths[vol]])).toContain(`Name: \t\t\t${vol}`);
        const volume = await docker.getVolume(`${E2E_PREFIX}-${vol}`).inspect();
        expect({ vol, profile: volume.Labels["mmagent.profile"], device: (volume.Options as any).device }).toEqual({ vol, profile, device: volumePaths[vol] });
    }
    // The db profile turns copy-on-write off (chattr +C), the text profile compresses.
    expect(sh("lsattr", ["-d", volumePaths["agent-db"]]).split(" ")[0]).toContain("C");
    expect(sh("btrfs", ["property", "get", volumePaths["agent-output"], "compression"]).trim()).toBe("compression=zstd");
});

test("secrets appear in no container label and in no plain value of the recorded state or outputs", async () => {
    const passwords = harness.entries("random:index/randomPassword:RandomPassword").map((e) => reveal<string>(e.outputs.result));
    expect(passwords).toHaveLength(2);
    passwords.forEach((p) => expect(p).toMatch(/^[A-Za-z0-9]{32}$/));
    const leaks: string[] = [];
    for (const name of CONTAINERS) {
        const labels = JSON.stringify((await docker.getContainer(name).inspect()).Config.Labels);
        if (passwords.some((p) => labels.includes(p))) leaks.push(`${name} labels`);
    }
    for (const entry of harness.state.values()) {
        for (const s of [...plainStrings(entry.inputs, "inputs"), ...plainStrings(entry.outputs, "outputs")]) {
            if (passwords.some((p) => s.text.includes(p))) leaks.push(`${entry.name} ${s.at}`);
        }
    }
    if (passwords.some((p) => JSON.stringify(first.outputs).includes(p))) leaks.push("stack outputs");
    // The CA's and the host certificates' private keys: secret wherever they are recorded, in no label.
    const keys = harness.entries("tls:index/privateKey:PrivateKey").map((e) => reveal<string>(e.outputs.privateKeyPem));
    expect(keys).toHaveLength(2);
    const keyBodies = keys.map((k) => k.split("\n")[1]);
    for (const entry of harness.state.values()) {
        for (const s of [...plainStrings(entry.inputs, "inputs"), ...plainStrings(entry.outputs, "outputs")]) {
            if (/PRIVATE KEY/.test(s.text) || keyBodies.some((b) => s.text.includes(b))) leaks.push(`${entry.name} ${s.at} (a private key)`);
        }
    }
    if (/PRIVATE KEY/.test(JSON.stringify(first.outputs))) leaks.push("stack outputs (a private key)");
    expect(leaks).toEqual([]);
    // And the secret-bearing inputs are there, wrapped: the agent's env and the cache's config.
    const agent = harness.entry(CONTAINER_TYPE, `${E2E_PREFIX}-agents-agent`);
    expect(JSON.stringify(reveal(agent.inputs.envs))).toContain(passwords.find((p) => JSON.stringify(reveal(agent.inputs.envs)).includes(p))!);
});

test("killing the agent's main process brings it back healthy through the restart policy", async () => {
    const before = await docker.getContainer(AGENT).inspect();
    const killedAt = Date.now();
    process.kill(before.State.Pid, "SIGKILL");
    await untilTrue("agent restarted", 30, async () => (await docker.getContainer(AGENT).inspect()).RestartCount > before.RestartCount);
    const restartedMs = Date.now() - killedAt;
    await untilTrue("agent healthy again", 60, async () => (await health(AGENT)) === "healthy");
    const healthyMs = Date.now() - killedAt;
    console.log(`agent main process killed: running again after ${restartedMs} ms, healthy after ${healthyMs} ms (healthcheck interval 10 s)`);
    const after = await docker.getContainer(AGENT).inspect();
    expect(after.Id).toBe(before.Id);
    expect(after.State.Pid).not.toBe(before.State.Pid);
    expect(viaProxy("/cgi-bin/check").status).toBe(200);
});

/** The e2e stack's config as the program validates it (what the CLI reads from a stack file). */
function e2eParsedConfig(opts: Parameters<typeof e2eStackConfig>[0]) {
    const raw = Object.fromEntries(Object.entries(e2eStackConfig(opts)).map(([k, v]) => [k.replace(/^mmagent:/, ""), tryJson(v)])) as RawStackConfig;
    return parseStackConfig(raw, { stackName: "e2e", projectDir: REPO_ROOT, hasSshPrivateKey: false });
}
function tryJson(v: string): unknown {
    try {
        return JSON.parse(v);
    } catch {
        return v;
    }
}

test("upgrade drill: the pre-change snapshot exists before the new agent starts; restoreFrom brings back the exact data and the previous image", async () => {
    viaProxy("/cgi-bin/note", { data: "second note" });
    const before = agentData(volumePaths);
    const oldAgentId = (await docker.getContainer(AGENT).inspect()).Id;

    // 1. Upgrade: only the agent's image changes.
    const t0 = Date.now();
    const upgrade = await harness.apply({ stack: "e2e", config: e2eStackConfig({ storageRoot: loop.mountPoint, agentImage: E2E_IMAGES.agentV2 }) });
    const changed = upgrade.operations.filter((o) => o.op !== "same").map((o) => `${o.op} ${o.name}`);
    expect(changed.sort()).toEqual(
        [`replace ${E2E_PREFIX}-storage-${AGENT}-change`, `replace ${E2E_PREFIX}-storage-${AGENT}-pre-change`, `replace ${E2E_PREFIX}-agents-agent`].sort(),
    );
    const snap = upgrade.outputs.snapshots[AGENT];
    expect(snap).toMatchObject({ image: E2E_IMAGES.agentV1, nextImage: E2E_IMAGES.agentV2 });
    const events = await containerEvents(AGENT, t0, Date.now());
    const newAgent = await docker.getContainer(AGENT).inspect();
    const stopped = events.find((e) => e.action === "stop" && e.id === oldAgentId);
    const created = events.find((e) => e.action === "create" && e.id === newAgent.Id);
    // When the snapshot was taken: the script stamps it once the service is stopped (ns) ...
    const snapshotNs = Number(JSON.parse(fs.readFileSync(path.join(loop.mountPoint, ".snapshots", "agent-db", `${snap.snapshot}.json`), "utf8")).createdNs);
    // ... and Btrfs records the subvolume's creation (to the second) independently.
    const btrfsCreated = /Creation time:\s+(.+)/.exec(sh("btrfs", ["subvolume", "show", snap.volumes["agent-db"]]))![1].trim();
    const btrfsCreatedS = Date.parse(btrfsCreated.replace(" ", "T").replace(" +0000", "Z")) / 1000;
    const at = (ns: number) => `+${((ns / 1e6 - t0) / 1000).toFixed(3)} s`;
    console.log(
        `upgrade: old agent stopped for the snapshot at ${at(stopped!.timeNano)}, snapshot ${snap.snapshot} taken at ${at(snapshotNs)} (Btrfs: ${btrfsCreated}), ` +
            `new agent container created at ${at(created!.timeNano)} (engine events: ${events.map((e) => e.action.split(":")[0]).join(", ")})`,
    );
    expect(stopped!.timeNano).toBeLessThan(snapshotNs);
    expect(snapshotNs).toBeLessThan(created!.timeNano);
    expect(btrfsCreatedS).toBeLessThanOrEqual(Math.floor(created!.timeNano / 1e9));
    expect(Math.abs(btrfsCreatedS - Math.floor(snapshotNs / 1e9))).toBeLessThanOrEqual(1);
    // The snapshot holds the data as it was before the upgrade, read-only.
    expect(agentData(snap.volumes)).toEqual(before);
    expect(sh("btrfs", ["property", "get", snap.volumes["agent-db"], "ro"]).trim()).toBe("ro=true");
    // The new image migrated the database: the live data is no longer what it was.
    expect(JSON.parse(viaProxy("/cgi-bin/check").body)).toMatchObject({ agent: "v2", schema: "2" });
    expect(agentData(volumePaths)).not.toEqual(before);

    // The snapshot recorded the image ID the old agent ran (built here, so no registry digest).
    const v1Id = (await docker.getImage(E2E_IMAGES.agentV1).inspect()).Id;
    expect(snap).toMatchObject({ imageId: v1Id, imageDigest: "" });

    // `mmagent status` (the CLI's own collection over the stack's access, here local) now shows it.
    const upgraded = e2eParsedConfig({ storageRoot: loop.mountPoint, agentImage: E2E_IMAGES.agentV2 });
    const host = await hostRunner(upgraded.host.connection, { project: "mmagent", stack: "e2e", hostName: `${E2E_PREFIX}-host` });
    const seen = await collectStatus(upgraded, host.runner);
    const report = summarizeStatus(upgraded, seen.engine, seen.storage, { stack: "e2e", now: Date.now() });
    const db = report.volumes.find((v) => v.name === "agent-db")!;
    console.log(`status after the upgrade: agent-db ${db.snapshotCount} snapshot(s), latest ${db.latestSnapshot?.name} of ${db.latestSnapshot?.image}; findings: ${JSON.stringify(report.findings)}`);
    expect(db.latestSnapshot).toMatchObject({ name: snap.snapshot, image: E2E_IMAGES.agentV1, imageId: v1Id, nextImage: E2E_IMAGES.agentV2 });
    expect(report.services.find((s) => s.role === "agent")).toMatchObject({ state: "running", image: E2E_IMAGES.agentV2, configuredImage: E2E_IMAGES.agentV2 });

    // 2. Roll back, declaratively, with what `mmagent rollback agent` would set: the image the
    // snapshot's data belongs to, and restoreFrom.
    const plan = planRollback(upgraded, "agent", seen.storage);
    expect(plan.configSets).toEqual([
        { key: "mmagent:services.agent.image", value: E2E_IMAGES.agentV1 },
        { key: "mmagent:services.agent.restoreFrom", value: snap.snapshot },
    ]);
    const rollback = await harness.apply({
        stack: "e2e",
        config: e2eStackConfig({ storageRoot: loop.mountPoint, agentImage: plan.image, agentRestoreFrom: plan.snapshot.name }),
    });
    const restoreOp = rollback.operations.find((o) => o.name === `${E2E_PREFIX}-storage-${AGENT}-restore`)!;
    const agentOp = rollback.operations.find((o) => o.name === `${E2E_PREFIX}-agents-agent`)!;
    expect(restoreOp.op).toBe("create");
    expect(agentOp.op).toBe("replace");
    expect(restoreOp.finishedAt).toBeLessThanOrEqual(agentOp.startedAt);
    const restored = await docker.getContainer(AGENT).inspect();
    expect(restored.Config.Image).toBe(E2E_IMAGES.agentV1);
    expect(agentData(volumePaths)).toEqual(before);
    expect(JSON.parse(viaProxy("/cgi-bin/check").body)).toMatchObject({ agent: "v1", schema: "1", cache: "PONG" });
    expect(fs.readFileSync(path.join(volumePaths["agent-output"], "note-2.txt"), "utf8")).toBe("second note\n");
});

test("teardown leaves no container, network, volume or mount behind", async () => {
    const ops = await harness.destroy();
    expect(ops.length).toBeGreaterThan(20);
    expect(harness.state.size).toBe(0);
    // Reverse order: containers go before the volumes and the network they use.
    const order = ops.map((o) => o.type);
    expect(order.lastIndexOf(CONTAINER_TYPE)).toBeLessThan(order.indexOf("docker:index/volume:Volume"));
    expect(order.lastIndexOf(CONTAINER_TYPE)).toBeLessThan(order.indexOf("docker:index/network:Network"));
    expect(order.filter((t) => t === COMMAND_TYPE).length).toBeGreaterThan(0);

    const containers = (await docker.listContainers({ all: true })).flatMap((c) => c.Names).filter((n) => n.startsWith(`/${E2E_PREFIX}-`));
    const networks = (await docker.listNetworks()).map((n) => n.Name).filter((n) => n === E2E_NETWORK);
    const volumes = ((await docker.listVolumes()).Volumes ?? []).map((v) => v.Name).filter((n) => n.startsWith(`${E2E_PREFIX}-`));
    const mounts = fs.readFileSync("/proc/mounts", "utf8").split("\n").filter((l) => l.includes(`/volumes/${E2E_PREFIX}-`) || l.includes(loop.mountPoint + "/"));
    expect({ containers, networks, volumes, mounts }).toEqual({ containers: [], networks: [], volumes: [], mounts: [] });
    loop.destroy();
    expect(fs.readFileSync("/proc/mounts", "utf8")).not.toContain(loop.mountPoint);
});
