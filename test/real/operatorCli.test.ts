/**
 * `mmagent status` and `mmagent rollback` (cli/) for real: a project directory with a stack file,
 * the stack's volumes made by storage.sh on a Btrfs loop device (and in a plain directory), its
 * containers running on the real engine, the CLI run in-process through `main` exactly as
 * `npm run mmagent` runs it, locally and over real SSH to the remote test host. The Pulumi CLI
 * cannot run here: a fake `pulumi` (MMAGENT_PULUMI) records each call and applies
 * `config set --path` to the stack file, so the rollback's result is read back by the same parser
 * the program uses, and the restore it sets up is then run with the component's own parameters.
 */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { main } from "../../cli/mmagent";
import { readStackFiles } from "../../cli/stackFiles";
import { StatusReport } from "../../cli/status";
import { planGuards, planVolumes } from "../../components/stack";
import { ensureParams, restoreParams, snapshotParams } from "../../components/storageLayout";
import { BtrfsLoop, requirePrerequisites, runHostScript, sh, TEST_IMAGE } from "../support/host";
import { REMOTE_HOST_SCRIPT, remoteHostEnv } from "../support/remoteHost";

jest.setTimeout(120_000);

const PREFIX = "mmops";
const STACK = "ops";
const ROLES = ["inference", "agent", "cache", "proxy"];
const MiB = 1024 ** 2;

let loop: BtrfsLoop;
let project: string;
let pulumiLog: string;
let fakePulumi: string;
let imageId: string;

function stackYaml(root: string, backend: string, extra: Record<string, unknown> = {}): string {
    return YAML.stringify({
        config: {
            "mmagent:namePrefix": PREFIX,
            "mmagent:host": { connection: { kind: "local" }, gpus: "none" },
            "mmagent:storage": { backend, root, quotasGiB: { "agent-db": 1 } },
            "mmagent:proxy": { engine: "caddy", image: TEST_IMAGE, bindAddress: "127.0.0.1", httpPort: 18080, httpsPort: 18443, tls: "internal" },
            "mmagent:services": { inference: { image: TEST_IMAGE }, agent: { image: TEST_IMAGE, host: "agent.localhost" }, cache: { image: TEST_IMAGE } },
            ...extra,
        },
    });
}

async function cli(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
    let out = "";
    let err = "";
    const code = await main(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t), cwd: project, env: { ...process.env, MMAGENT_PULUMI: fakePulumi, ...env }, now: () => Date.now() });
    return { code, out, err };
}

async function statusJson(...extra: string[]): Promise<{ code: number; report: StatusReport; err: string }> {
    const r = await cli(["status", "--stack", STACK, "--json", ...extra]);
    return { code: r.code, report: JSON.parse(r.out || "null"), err: r.err };
}

function runContainer(role: string, health: "true" | "false"): void {
    spawnSync("docker", ["rm", "-f", `${PREFIX}-${role}`]);
    sh("docker", ["run", "-d", "--init", "--name", `${PREFIX}-${role}`, "--health-cmd", health, "--health-interval", "1s", "--health-retries", "1", "--health-start-period", "0s", TEST_IMAGE, "sleep", "600"]);
}

async function until(what: string, f: () => boolean, seconds = 30): Promise<void> {
    for (const end = Date.now() + seconds * 1000; Date.now() < end; await new Promise((r) => setTimeout(r, 250))) if (f()) return;
    throw new Error(`timed out waiting for ${what}`);
}
const health = (role: string) => sh("docker", ["inspect", "-f", "{{.State.Health.Status}}", `${PREFIX}-${role}`]).trim();

/** Everything under the root with size and mtime, and each container's start time: what "read-only" must leave alone. */
function fingerprint(root: string): string {
    const files = sh("find", [root, "-printf", "%p %s %T@ %m\n"]).split("\n").sort().join("\n");
    const started = ROLES.map((r) => sh("docker", ["inspect", "-f", "{{.State.StartedAt}} {{.RestartCount}}", `${PREFIX}-${r}`]).trim()).join("\n");
    return `${files}\n${started}`;
}

beforeAll(() => {
    requirePrerequisites({ commands: ["mkfs.btrfs", "btrfs", "flock", "ssh"], docker: true, image: true, root: true });
    loop = new BtrfsLoop(512).create();
    project = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-cli-project-"));
    fs.writeFileSync(path.join(project, "Pulumi.yaml"), "name: mmagent\nruntime: nodejs\n");
    fs.writeFileSync(path.join(project, `Pulumi.${STACK}.yaml`), stackYaml(path.join(loop.mountPoint, "mm"), "btrfs"));
    // The fake Pulumi CLI: one JSON line per call; `config set --path K V` edits the stack file.
    pulumiLog = path.join(project, "pulumi-calls.jsonl");
    fakePulumi = path.join(project, "fake-pulumi.js");
    fs.writeFileSync(
        fakePulumi,
        `#!${process.execPath}
const fs = require("fs"), YAML = require(${JSON.stringify(require.resolve("yaml"))});
const argv = process.argv.slice(2);
fs.appendFileSync(${JSON.stringify(pulumiLog)}, JSON.stringify({ argv, cwd: process.cwd() }) + "\\n");
const stack = argv[argv.indexOf("--stack") + 1];
if (argv[0] === "config" && argv[1] === "set" && argv[2] === "--path") {
  const file = "Pulumi." + stack + ".yaml", doc = YAML.parse(fs.readFileSync(file, "utf8"));
  const [ns, dotted] = [argv[3].slice(0, argv[3].indexOf(":")), argv[3].slice(argv[3].indexOf(":") + 1)];
  const [top, ...rest] = dotted.split(".");
  let o = (doc.config[ns + ":" + top] ??= {});
  for (const k of rest.slice(0, -1)) o = (o[k] ??= {});
  o[rest.at(-1)] = argv[4];
  fs.writeFileSync(file, YAML.stringify(doc));
} else if (argv[0] === "preview" || argv[0] === "up") console.log("fake pulumi " + argv[0]);
else { console.error("fake pulumi: unexpected " + argv.join(" ")); process.exit(3); }
`,
        { mode: 0o755 },
    );
    // The stack's volumes as the component makes them, and its containers.
    const config = readStackFiles(project, STACK, {}).config;
    for (const v of planVolumes(config)) {
        const r = runHostScript("storage", ensureParams({ backend: "btrfs", root: config.storage.root }, v));
        expect(r.status).toBe(0);
    }
    for (const role of ROLES) runContainer(role, "true");
    imageId = sh("docker", ["image", "inspect", "-f", "{{.Id}}", TEST_IMAGE]).trim();
});

afterAll(() => {
    for (const role of ROLES) spawnSync("docker", ["rm", "-f", `${PREFIX}-${role}`]);
    spawnSync("docker", ["rmi", `${PREFIX}-moved:1`]);
    loop?.destroy();
    if (project) fs.rmSync(project, { recursive: true, force: true });
});

test("status of a healthy stack on Btrfs: every container healthy with its image ID, every volume with the quota Btrfs enforces; exit 0", async () => {
    for (const role of ROLES) await until(`${role} healthy`, () => health(role) === "healthy");
    const { code, report, err } = await statusJson();
    expect({ code, err }).toEqual({ code: 0, err: "" });
    expect(report.services.map((s) => [s.container, s.state, s.health, s.image, s.imageId])).toEqual(ROLES.map((r) => [`${PREFIX}-${r}`, "running", "healthy", TEST_IMAGE, imageId]));
    expect(report.storageDriver).toBe("overlay2");
    expect(report.backend).toBe("btrfs");
    const db = report.volumes.find((v) => v.name === "agent-db")!;
    expect(db).toMatchObject({ exists: true, quotaBytes: 1024 ** 3, quotaSource: "host", snapshotCount: 0, path: path.join(loop.mountPoint, "mm", "agent-db") });
    expect(report.volumes.map((v) => v.name)).toEqual(planVolumes(readStackFiles(project, STACK, {}).config).map((v) => v.name));
    const table = await cli(["status", "--stack", STACK]);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/^agent\s+mmops-agent\s+running\s+healthy\s+local\/mmagent-testbase:2\s+id [0-9a-f]{12}$/m);
    expect(table.out).toContain("ok: nothing needs attention");
    console.log(table.out);
});

test("a pre-change snapshot records the image ID and the volume's size; status shows it as the latest, and changes nothing on the host", async () => {
    const config = readStackFiles(project, STACK, {}).config;
    const volumes = planVolumes(config).filter((v) => v.service === `${PREFIX}-agent` && !v.readOnly).map((v) => v.name);
    // No sync here: storage.sh commits the file system before it reads the qgroup (a new write is
    // not in Btrfs's accounting until the transaction commits, up to 30 s later).
    fs.writeFileSync(path.join(config.storage.root, "agent-db", "data"), Buffer.alloc(3 * MiB, 1));
    const guard = planGuards(config)[`${PREFIX}-agent`];
    const s = runHostScript("storage", snapshotParams({ backend: "btrfs", root: config.storage.root, keepSnapshots: 5 }, volumes, { ...guard, image: "local/next:2" }, "mmagent-pre-0000cafe"));
    expect(s.status).toBe(0);
    expect(s.json).toMatchObject({ snapshot: "mmagent-pre-0000cafe", image: TEST_IMAGE, imageId, imageDigest: "", nextImage: "local/next:2" });
    expect(s.json.bytes["agent-db"]).toBeGreaterThanOrEqual(3 * MiB);
    await until("agent healthy after its snapshot stop", () => health("agent") === "healthy");

    const before = fingerprint(config.storage.root);
    const { code, report } = await statusJson();
    expect(fingerprint(config.storage.root)).toBe(before);
    expect(code).toBe(0);
    const db = report.volumes.find((v) => v.name === "agent-db")!;
    expect(db).toMatchObject({ snapshotCount: 1, latestSnapshot: { name: "mmagent-pre-0000cafe", image: TEST_IMAGE, imageId, bytes: s.json.bytes["agent-db"] } });
    expect(db.usedBytes).toBeGreaterThanOrEqual(3 * MiB);
});

test("a volume past the threshold and an unhealthy container: exit 1; --prometheus --output writes the textfile atomically", async () => {
    const root = readStackFiles(project, STACK, {}).config.storage.root;
    fs.writeFileSync(path.join(root, "agent-db", "more"), Buffer.alloc(60 * MiB, 2));
    runContainer("cache", "false");
    await until("cache unhealthy", () => health("cache") === "unhealthy");
    const { code, report } = await statusJson("--threshold", "5");
    expect(code).toBe(1);
    expect(report.findings.filter((f) => f.level === "problem").map((f) => f.subject)).toEqual([`${PREFIX}-cache`, "agent-db"]);
    expect(report.findings.find((f) => f.subject === "agent-db")!.message).toMatch(/^6\.\d% of its quota used \(threshold 5%\)$/);
    // At the default threshold the volume is fine; the container is not.
    expect((await statusJson()).report.findings.filter((f) => f.level === "problem").map((f) => f.subject)).toEqual([`${PREFIX}-cache`]);

    const shown = await cli(["status", "--stack", STACK, "--threshold", "5"]);
    expect(shown.code).toBe(1);
    expect(shown.out).toMatch(/^PROBLEM agent-db: 6\.\d% of its quota used \(threshold 5%\)$/m);
    console.log(shown.out);
    const file = path.join(project, "mmagent.prom");
    const r = await cli(["status", "--stack", STACK, "--prometheus", "--output", file, "--threshold", "5"]);
    expect(r).toMatchObject({ code: 1, out: "" });
    const text = fs.readFileSync(file, "utf8");
    expect(text).toContain(`mmagent_status_problems{stack="${STACK}"} 2`);
    expect(text).toContain(`mmagent_container_healthy{stack="${STACK}",role="cache",container="${PREFIX}-cache"} 0`);
    expect(text).toMatch(new RegExp(`mmagent_volume_snapshots\\{stack="${STACK}",volume="agent-db",service="${PREFIX}-agent"\\} 1`));
    expect(fs.readdirSync(project).filter((f) => f.includes(".tmp"))).toEqual([]);
    runContainer("cache", "true");
});

test("rollback: the latest snapshot's image and restoreFrom through `pulumi config set`, then a preview; --yes applies; the restore it sets up brings the data back", async () => {
    fs.rmSync(pulumiLog, { force: true });
    const r = await cli(["rollback", "agent", "--stack", STACK]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain(`rolling agent back to snapshot mmagent-pre-0000cafe`);
    expect(r.out).toContain(`note: ${TEST_IMAGE} has no registry digest (built on the host): pinned by reference; the restore checks that it is still image ${imageId}`);
    const calls = fs.readFileSync(pulumiLog, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(calls).toEqual([
        { argv: ["config", "set", "--path", "mmagent:services.agent.image", TEST_IMAGE, "--stack", STACK], cwd: project },
        { argv: ["config", "set", "--path", "mmagent:services.agent.restoreFrom", "mmagent-pre-0000cafe", "--stack", STACK], cwd: project },
        { argv: ["preview", "--diff", "--stack", STACK], cwd: project },
    ]);
    const after = readStackFiles(project, STACK, {}).config;
    expect(after.services.agent).toMatchObject({ image: TEST_IMAGE, restoreFrom: "mmagent-pre-0000cafe" });
    // status now sees a restore that is configured but not applied.
    const pending = (await statusJson()).report.volumes.filter((v) => v.pendingRestore).map((v) => v.name);
    expect(pending).toEqual(["agent-db", "agent-uploads", "agent-output", "agent-logs"]);

    fs.rmSync(pulumiLog);
    expect((await cli(["rollback", "agent", "mmagent-pre-0000cafe", "--stack", STACK, "--yes"])).code).toBe(0);
    expect(JSON.parse(fs.readFileSync(pulumiLog, "utf8").trim().split("\n").at(-1)!).argv).toEqual(["up", "--yes", "--diff", "--stack", STACK]);

    // The restore step `up` would run, with the parameters the component derives from that config.
    const volumes = planVolumes(after).filter((v) => v.service === `${PREFIX}-agent` && !v.readOnly).map((v) => v.name);
    const restore = runHostScript("storage", restoreParams({ backend: "btrfs", root: after.storage.root }, volumes, planGuards(after)[`${PREFIX}-agent`]));
    expect(restore.status).toBe(0);
    expect(fs.existsSync(path.join(after.storage.root, "agent-db", "more"))).toBe(false);
    expect(fs.statSync(path.join(after.storage.root, "agent-db", "data")).size).toBe(3 * MiB);
    const done = (await statusJson()).report;
    expect(done.volumes.some((v) => v.pendingRestore)).toBe(false);
    expect(done.volumes.find((v) => v.name === "agent-db")!.snapshotCount).toBe(2); // + the state the restore set aside
});

test("the restore refuses a tag that was moved since the snapshot (the image ID it recorded)", () => {
    const config = readStackFiles(project, STACK, {}).config;
    // A tag for the snapshot's image that is then pointed at another image.
    sh("docker", ["tag", TEST_IMAGE, `${PREFIX}-moved:1`]);
    sh("docker", ["rm", "-f", `${PREFIX}-agent`]);
    sh("docker", ["run", "-d", "--init", "--name", `${PREFIX}-agent`, `${PREFIX}-moved:1`, "sleep", "600"]);
    const volumes = ["agent-db"];
    const s = runHostScript("storage", snapshotParams({ backend: "btrfs", root: config.storage.root, keepSnapshots: 5 }, volumes, { container: `${PREFIX}-agent`, image: "x:2" }, "mmagent-pre-0000beef"));
    expect(s.json).toMatchObject({ image: `${PREFIX}-moved:1`, imageId });
    const other = execFileSync("docker", ["build", "-q", "-t", `${PREFIX}-moved:1`, "-"], { input: `FROM ${TEST_IMAGE}\nLABEL moved=1\n`, encoding: "utf8" }).trim();
    expect(other).not.toBe(imageId);
    const r = runHostScript("storage", restoreParams({ backend: "btrfs", root: config.storage.root }, volumes, { container: `${PREFIX}-agent`, image: `${PREFIX}-moved:1`, restoreFrom: "mmagent-pre-0000beef" }));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
        `snapshot mmagent-pre-0000beef holds data of image ${imageId}, but ${PREFIX}-moved:1 is now ${other} on this host (the tag was moved since the snapshot): set the service's image to the image with ID ${imageId}`,
    );
    spawnSync("docker", ["rm", "-f", `${PREFIX}-agent`]);
    runContainer("agent", "true");
});

test("a plain directory: status warns that nothing is snapshotted and uses the declared quota; rollback is refused, naming why", async () => {
    const plain = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-cli-plain-"));
    const file = path.join(project, `Pulumi.${STACK}.yaml`);
    const saved = fs.readFileSync(file, "utf8");
    try {
        fs.writeFileSync(file, stackYaml(plain, "auto"));
        const config = readStackFiles(project, STACK, {}).config;
        for (const v of planVolumes(config)) expect(runHostScript("storage", ensureParams({ backend: "auto", root: plain }, v)).status).toBe(0);
        const { report } = await statusJson();
        expect(report.backend).toBe("dir");
        expect(report.findings).toContainEqual({ level: "warning", subject: "storage", message: `backend dir (auto found no Btrfs or ZFS at ${plain}): no snapshots before image changes` });
        expect(report.volumes.find((v) => v.name === "agent-db")).toMatchObject({ quotaBytes: 1024 ** 3, quotaSource: "config", snapshotCount: 0 });
        fs.rmSync(pulumiLog, { force: true });
        const r = await cli(["rollback", "agent", "--stack", STACK]);
        expect(r).toMatchObject({ code: 2, err: `mmagent: storage.backend auto found neither Btrfs nor ZFS at ${plain}: this host takes no snapshots, so there is nothing to roll back to\n` });
        expect(fs.existsSync(pulumiLog)).toBe(false);
    } finally {
        fs.writeFileSync(file, saved);
        fs.rmSync(plain, { recursive: true, force: true });
    }
});

describe("over SSH (the remote test host: sshd in a network namespace, a non-root deploy user with the sudoers line)", () => {
    beforeAll(() => execFileSync("bash", [REMOTE_HOST_SCRIPT, "up"], { stdio: ["ignore", "inherit", "inherit"], timeout: 180_000 }), 240_000);
    afterAll(() => execFileSync("bash", [REMOTE_HOST_SCRIPT, "down"], { stdio: ["ignore", "inherit", "inherit"], timeout: 120_000 }), 120_000);

    function sshStack(hostKey: string): void {
        const env = remoteHostEnv();
        const file = path.join(project, `Pulumi.${STACK}.yaml`);
        const doc = YAML.parse(fs.readFileSync(file, "utf8"));
        doc.config["mmagent:host"] = { connection: { kind: "ssh", host: env.host, port: env.port, user: env.user, hostKey }, gpus: "none" };
        fs.writeFileSync(file, YAML.stringify(doc));
    }

    test("status reads the same host through ssh with the pinned host key and --identity; a wrong host key is refused before anything runs", async () => {
        const env = remoteHostEnv();
        for (const role of ROLES) await until(`${role} healthy`, () => health(role) === "healthy");
        const local = (await statusJson()).report;
        sshStack(env.hostKey);
        const remote = await statusJson("--identity", env.privateKeyPath);
        expect(remote.err).toBe("");
        expect(remote.report.services).toEqual(local.services);
        expect(remote.report.volumes.map((v) => [v.name, v.snapshotCount, v.quotaBytes])).toEqual(local.volumes.map((v) => [v.name, v.snapshotCount, v.quotaBytes]));

        sshStack(env.wrongHostKey);
        const refused = await cli(["status", "--stack", STACK, "--identity", env.privateKeyPath]);
        expect(refused.code).toBe(2);
        expect(refused.err).toMatch(new RegExp(`^mmagent: ssh to ${env.user}@${env.host.replace(/\./g, "\\.")}:${env.port} failed: .*(Host key verification failed|REMOTE HOST IDENTIFICATION)`));
        // Without --identity and without the secret: told what to pass.
        const nokey = await cli(["status", "--stack", STACK]);
        expect(nokey.code).toBe(2);
        expect(nokey.err).toContain("mmagent:sshPrivateKey: an ssh connection needs the private key");
    });
});
