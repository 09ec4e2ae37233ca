/**
 * The production path for real: the prod example (Pulumi.prod.yaml, changed only where this
 * machine must: see prodOverSshStackConfig) applied by the real-engine harness to the SSH test
 * host of scripts/remote-test-host.sh — a network namespace with its own sshd, a non-root deploy
 * user whose only privilege is sudoersLine(), and this machine's Docker engine and Btrfs.
 *
 * Everything reaches the host the way a deployment from CI does: the host scripts as
 * `remote.Command`s over SSH with the pinned host key and the key from the stack's secret config
 * (ssh2, configured like pulumi-command), escalating with `sudo -n`; Docker through the system
 * `ssh` with docker/cli's argv and the program's sshOpts, using only the key and known_hosts files
 * the program writes (no agent; root has no ~/.ssh here). Then the upgrade + restoreFrom drill,
 * and the README's emergency restore, run as the deploy user through sudo.
 */
import { spawnSync } from "child_process";
import Docker from "dockerode";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { caddyRootCert, removeStackLeftovers, treeListing, untilTrue, viaProxy } from "../support/e2eHelpers";
import { buildE2eImages, E2E_IMAGES, PROD_HTTPS_PORT, PROD_NETWORK, PROD_PREFIX, prodOverSshStackConfig } from "../support/e2eStack";
import { BtrfsLoop, removeSshClientDir, requirePrerequisites } from "../support/host";
import { REPO_ROOT } from "../support/mockProgram";
import { sshClientFor } from "../support/providers/dockerProvider";
import { ApplyResult, RealEngineHarness } from "../support/realEngineHarness";
import { REMOTE_HOST_SCRIPT, RemoteHostEnv, remoteHostEnv } from "../support/remoteHost";
import { reveal } from "../support/secrets";

jest.setTimeout(300_000);

const docker = new Docker();
const STACK = "prod";
const AGENT = `${PROD_PREFIX}-agent`;
const AGENT_HOST = "agent.example.com";
const CONTAINERS = ["proxy", "inference", "agent", "cache", "vector-db"].map((r) => `${PROD_PREFIX}-${r}`);
const SSH_DIR = path.join(os.userInfo().homedir, `.mmagent/ssh/mmagent.${STACK}.${PROD_PREFIX}-host`);
const AGENT_DATA = ["agent-db", "agent-output"];

let remote: RemoteHostEnv;
let loop: BtrfsLoop;
let harness: RealEngineHarness;
let first: ApplyResult;
let volumePaths: Record<string, string>;
const steps: string[] = [];
/** The drill's pre-change snapshot and the agent's data it holds. */
let drill: { snapshot: string; data: string[] } | undefined;

const step = (what: string, ms: number) => {
    steps.push(`${what}: ${(ms / 1000).toFixed(1)} s`);
    console.log(`prod over SSH — ${what}: ${(ms / 1000).toFixed(1)} s`);
};

function config(extra: { agentImage?: string; agentRestoreFrom?: string } = {}): Record<string, string> {
    const c = prodOverSshStackConfig({ remote: { host: remote.host, port: remote.port, user: remote.user, hostKey: remote.hostKey }, storageRoot: loop.mountPoint, ...extra });
    return { ...c, "mmagent:sshPrivateKey": fs.readFileSync(remote.privateKeyPath, "utf8") };
}

async function apply(what: string, extra: { agentImage?: string; agentRestoreFrom?: string } = {}, refresh = false): Promise<ApplyResult> {
    const r = await harness.apply({ stack: STACK, config: config(extra), secretKeys: ["mmagent:sshPrivateKey"], refresh });
    step(`${what} (${r.changes.length} changes)`, r.durationMs);
    return r;
}

const proxy = () => ({ caFile: caddyRootCert(volumePaths["proxy-data"]), host: AGENT_HOST, httpsPort: PROD_HTTPS_PORT });
const agentData = () => AGENT_DATA.flatMap((v) => treeListing(volumePaths[v]).map((l) => `${v}/${l}`));
const health = async (name: string) => (await docker.getContainer(name).inspect()).State.Health?.Status;
const sshSessionsOf = (user: string) => spawnSync("pgrep", ["-u", user], { encoding: "utf8" }).stdout.trim();

beforeAll(async () => {
    requirePrerequisites({ commands: ["btrfs", "mkfs.btrfs", "curl", "ssh", "sshd", "ip"], docker: true, image: true, root: true });
    await removeStackLeftovers(docker, PROD_PREFIX, PROD_NETWORK);
    removeSshClientDir(SSH_DIR);
    let t = Date.now();
    const up = spawnSync("bash", [REMOTE_HOST_SCRIPT, "up"], { encoding: "utf8", timeout: 240_000 });
    if (up.status !== 0) throw new Error(`remote-test-host.sh up failed: ${up.stderr}`);
    remote = remoteHostEnv();
    step("SSH test host up (netns, sshd, deploy user with the sudoers line)", Date.now() - t);
    await buildE2eImages(docker);
    loop = new BtrfsLoop(1024).create();
    harness = new RealEngineHarness(docker);
    // As in CI: no agent, and no ~/.ssh that could authorize or trust anything.
    expect(fs.existsSync(path.join(os.userInfo().homedir, ".ssh", "known_hosts"))).toBe(false);
    first = await apply("first apply over SSH");
    volumePaths = first.outputs.volumePaths;
}, 600_000);

afterAll(async () => {
    await harness?.destroy().catch(() => undefined);
    harness?.close();
    loop?.destroy();
    removeSshClientDir(SSH_DIR);
    spawnSync("bash", [REMOTE_HOST_SCRIPT, "down"], { encoding: "utf8", timeout: 120_000 });
    console.log(`prod over SSH, steps:\n  ${steps.join("\n  ")}`);
}, 300_000);

test("every host step ran over SSH as the deploy user, and Docker went through the system ssh with the program's files only", () => {
    expect(harness.entries("command:local:Command")).toEqual([]);
    const remoteCommands = harness.entries("command:remote:Command");
    expect(remoteCommands.length).toBeGreaterThan(10);
    for (const c of remoteCommands) {
        const connection = reveal<any>(c.inputs.connection);
        expect({ name: c.name, host: connection.host, port: connection.port, user: connection.user, hostKey: connection.hostKey }).toEqual({
            name: c.name, host: remote.host, port: remote.port, user: remote.user, hostKey: remote.hostKey,
        });
    }
    const provider = harness.entry("pulumi:providers:docker", `${PROD_PREFIX}-host-docker`);
    const providerConfig = reveal<any>(provider.outputs);
    expect(providerConfig.host).toBe(`ssh://${remote.user}@${remote.host}:${remote.port}`);
    const client = sshClientFor(providerConfig)!;
    const argv = client.argv;
    expect(argv.slice(0, 4)).toEqual(["-l", remote.user, "-p", String(remote.port)]);
    expect(argv.slice(-5)).toEqual(["-o ConnectTimeout=30", "-T", "--", remote.host, "docker system dial-stdio"]);
    expect(argv).toContain(`IdentityFile=~/.mmagent/ssh/mmagent.${STACK}.${PROD_PREFIX}-host/id_key`);
    // Every container, network and volume was created, read and diffed through that ssh.
    const dockerResources = [...harness.state.values()].filter((e) => e.type.startsWith("docker:index/"));
    expect(dockerResources.every((e) => e.provider?.startsWith(provider.urn))).toBe(true);
    expect(client.requests()).toBeGreaterThan(2 * dockerResources.length);
    console.log(`Docker API over ssh: ${client.requests()} requests for ${dockerResources.length} docker resources`);
    // The key the program wrote is the stack's secret, private to this user.
    expect(fs.readFileSync(path.join(SSH_DIR, "id_key"), "utf8")).toBe(fs.readFileSync(remote.privateKeyPath, "utf8"));
    expect((fs.statSync(path.join(SSH_DIR, "id_key")).mode & 0o777).toString(8)).toBe("600");
    expect(fs.readFileSync(path.join(SSH_DIR, "known_hosts"), "utf8")).toBe(`[${remote.host}]:${remote.port} ${remote.hostKey}\n`);
});

test("the prod-shaped stack is healthy: five containers on the IPv6 network, hardened, the proxy on 127.0.0.1 only", async () => {
    for (const name of CONTAINERS) {
        await untilTrue(`${name} healthy`, 90, async () => (await health(name)) === "healthy");
        const c = await docker.getContainer(name).inspect();
        expect(c.HostConfig).toMatchObject({ CapDrop: ["ALL"], SecurityOpt: ["no-new-privileges:true"], Privileged: false, Init: true });
        expect(c.NetworkSettings.Networks[PROD_NETWORK].GlobalIPv6Address).toMatch(/^fd6d:6d61:6765::/);
    }
    const published = Object.values((await docker.getContainer(`${PROD_PREFIX}-proxy`).inspect()).HostConfig.PortBindings ?? {}).flat() as { HostIp: string }[];
    expect([...new Set(published.map((b) => b.HostIp))]).toEqual(["127.0.0.1"]);
    let check = viaProxy(proxy(), "/cgi-bin/check");
    await untilTrue("agent through the proxy", 30, () => (check = viaProxy(proxy(), "/cgi-bin/check")).status === 200);
    expect(JSON.parse(check.body)).toMatchObject({ agent: "v1", inference: true, cache: "PONG" });
    // Each volume is a subvolume on the host's Btrfs, with prod's quota where it sets one.
    for (const v of ["agent-db", "vector-db-data", "inference-models"]) expect(volumePaths[v]).toBe(path.join(loop.mountPoint, v));
});

test("a second apply over SSH reads everything back and changes nothing", async () => {
    const second = await apply("second apply with refresh", {}, true);
    console.log(`second apply over SSH: ${second.changes.length} changes${second.changes.map((c) => `\n  ${c}`).join("")}`);
    expect(second.changes).toEqual([]);
});

test("refused before anything runs, each naming the key or variable: no hostKey, a hostKey that is not a public key line, DOCKER_CONTEXT set", async () => {
    const opsBefore = harness.operations.length;
    const withConnection = (change: (c: any) => void) => {
        const c = config();
        const host = JSON.parse(c["mmagent:host"]);
        change(host.connection);
        return { ...c, "mmagent:host": JSON.stringify(host) };
    };
    const attempt = (cfg: Record<string, string>) => harness.apply({ stack: STACK, config: cfg, secretKeys: ["mmagent:sshPrivateKey"] });
    await expect(attempt(withConnection((c) => delete c.hostKey))).rejects.toThrow(/mmagent:host\.connection\.hostKey: an ssh connection pins the host's public key/);
    await expect(attempt(withConnection((c) => (c.hostKey = fs.readFileSync(remote.privateKeyPath, "utf8"))))).rejects.toThrow(/mmagent:host\.connection\.hostKey: paste the key/);
    process.env.DOCKER_CONTEXT = "laptop";
    try {
        await expect(attempt(config())).rejects.toThrow(/\$DOCKER_CONTEXT: is set \("laptop"\).*env -u DOCKER_CONTEXT pulumi up/);
    } finally {
        delete process.env.DOCKER_CONTEXT;
    }
    expect(harness.operations.length).toBe(opsBefore);
});

test("upgrade + restoreFrom drill over SSH: the pre-change snapshot, then the exact data and the previous image back", async () => {
    await untilTrue("agent through the proxy", 30, () => viaProxy(proxy(), "/cgi-bin/note", { data: "prod note" }).status === 200);
    const before = agentData();

    const upgrade = await apply("upgrade of the agent (snapshot over SSH, then replace)", { agentImage: E2E_IMAGES.agentV2 });
    expect(upgrade.changes.map((c) => c.split(":")[0]).sort()).toEqual(
        [`replace ${PROD_PREFIX}-storage-${AGENT}-change`, `replace ${PROD_PREFIX}-storage-${AGENT}-pre-change`, `replace ${PROD_PREFIX}-agents-agent`].sort(),
    );
    const snap = upgrade.outputs.snapshots[AGENT];
    expect(snap).toMatchObject({ image: E2E_IMAGES.agentV1, nextImage: E2E_IMAGES.agentV2 });
    await untilTrue("v2 through the proxy", 60, () => viaProxy(proxy(), "/cgi-bin/check").body.includes('"agent":"v2"'));
    expect(agentData()).not.toEqual(before);

    const rollback = await apply("rollback: previous image + restoreFrom", { agentImage: E2E_IMAGES.agentV1, agentRestoreFrom: snap.snapshot });
    expect(rollback.operations.find((o) => o.name === `${PROD_PREFIX}-storage-${AGENT}-restore`)!.op).toBe("create");
    expect((await docker.getContainer(AGENT).inspect()).Config.Image).toBe(E2E_IMAGES.agentV1);
    expect(agentData()).toEqual(before);
    await untilTrue("v1 through the proxy", 60, () => viaProxy(proxy(), "/cgi-bin/check").body.includes('"agent":"v1"'));
    expect(JSON.parse(viaProxy(proxy(), "/cgi-bin/check").body)).toMatchObject({ agent: "v1", schema: "1" });
    drill = { snapshot: snap.snapshot, data: before };
});

test("the README's emergency restore, run from this machine on the remote host as the deploy user through sudo, puts the data back byte for byte", async () => {
    expect(drill).toBeDefined();
    const snap = { snapshot: drill!.snapshot };
    const before = drill!.data;
    // Change the live data after the snapshot: the emergency restore must bring `before` back.
    expect(viaProxy(proxy(), "/cgi-bin/note", { data: "written after the snapshot" }).status).toBe(200);
    expect(agentData()).not.toEqual(before);

    const readme = fs.readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
    const block = /<!-- emergency-restore -->\s*```sh\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    const knownHosts = path.join(remote.stateDir, "readme_known_hosts");
    fs.writeFileSync(knownHosts, `[${remote.host}]:${remote.port} ${remote.hostKey}\n`);
    const command = block!
        .replace("ssh deploy@gpu1.example.com", `ssh -F /dev/null -i ${remote.privateKeyPath} -p ${remote.port} -o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes -o BatchMode=yes ${remote.user}@${remote.host}`)
        .replace("MMAGENT_BACKEND=zfs", "MMAGENT_BACKEND=btrfs")
        .replace("MMAGENT_ROOT=tank/mmagent", `MMAGENT_ROOT=${loop.mountPoint}`)
        .replace("MMAGENT_SNAPSHOT=mmagent-pre-1a2b3c4d", `MMAGENT_SNAPSHOT=${snap.snapshot}`)
        .replace("MMAGENT_CONTAINER=prod-agent", `MMAGENT_CONTAINER=${AGENT}`)
        .replace("MMAGENT_EXPECT_IMAGE=ghcr.io/open-webui/open-webui:v0.6.33", `MMAGENT_EXPECT_IMAGE=${E2E_IMAGES.agentV1}`);
    const t = Date.now();
    const r = spawnSync("bash", ["-c", command], { cwd: REPO_ROOT, encoding: "utf8", timeout: 180_000, env: { PATH: process.env.PATH! } });
    step("README emergency restore over SSH as deploy via sudo", Date.now() - t);
    expect({ status: r.status, stderr: r.status === 0 ? "" : r.stderr }).toEqual({ status: 0, stderr: "" });
    expect(JSON.parse(r.stdout.trim().split("\n").pop()!)).toMatchObject({ restored: snap.snapshot, image: E2E_IMAGES.agentV1 });
    expect(agentData()).toEqual(before);
    await untilTrue("agent healthy after the emergency restore", 60, async () => (await health(AGENT)) === "healthy");
});

test("teardown leaves nothing: no container, network, volume, ssh session, key file or test host", async () => {
    const ops = await harness.destroy();
    harness.close();
    expect(ops.length).toBeGreaterThan(20);
    const containers = (await docker.listContainers({ all: true })).flatMap((c) => c.Names).filter((n) => n.startsWith(`/${PROD_PREFIX}-`));
    const networks = (await docker.listNetworks()).map((n) => n.Name).filter((n) => n === PROD_NETWORK);
    const volumes = ((await docker.listVolumes()).Volumes ?? []).map((v) => v.Name).filter((n) => n.startsWith(`${PROD_PREFIX}-`));
    expect({ containers, networks, volumes }).toEqual({ containers: [], networks: [], volumes: [] });
    removeSshClientDir(SSH_DIR);
    const down = spawnSync("bash", [REMOTE_HOST_SCRIPT, "down"], { encoding: "utf8", timeout: 120_000 });
    expect(down.status).toBe(0);
    expect({ sessions: sshSessionsOf(remote.user), netns: spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout.includes("mmagent-rh"), user: spawnSync("id", [remote.user]).status === 0 }).toEqual({
        sessions: "", netns: false, user: false,
    });
});
