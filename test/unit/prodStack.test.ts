/**
 * The prod example (the real Pulumi.prod.yaml) under mocks, with the agent rolling back to an
 * earlier snapshot: an SSH host with GPUs, ZFS, ACME, pre-change snapshots gating containers.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { removeSshClientDir } from "../support/host";
import { decodeScriptParams, MockRun, runProgram, stackFileConfig } from "../support/mockProgram";
import { policyViolations } from "../support/policyHarness";

let run: MockRun;
let outputs: Record<string, { value: any; secret: boolean }>;
const SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nprod-test-key\n-----END OPENSSH PRIVATE KEY-----";
// Where the program writes the key for the Docker provider's ssh: the passwd home, as ssh expands `~`.
const SSH_DIR = path.join(os.userInfo().homedir, ".mmagent/ssh/mmagent.prod.prod-host");
const removeSshDir = () => removeSshClientDir(SSH_DIR);

afterAll(removeSshDir);

beforeAll(async () => {
    removeSshDir();
    const services = JSON.parse(stackFileConfig("prod")["mmagent:services"]);
    services.agent.restoreFrom = "mmagent-pre-0a0b0c0d";
    ({ run, outputs } = await runProgram({
        stack: "prod",
        config: { "mmagent:sshPrivateKey": SSH_KEY, "mmagent:services": JSON.stringify(services) },
        secretKeys: ["mmagent:sshPrivateKey"],
    }));
});

const CONTAINER = "docker:index/container:Container";
const REMOTE = "command:remote:Command";

test("every host step runs over SSH with the pinned host key and the key as a secret", () => {
    expect(run.byType("command:local:Command")).toEqual([]);
    for (const c of run.byType(REMOTE)) {
        expect(c.inputs.connection).toMatchObject({
            host: "gpu1.example.com",
            port: 22,
            user: "deploy",
            hostKey: expect.stringMatching(/^ssh-ed25519 /),
            privateKey: SSH_KEY,
        });
        expect(c.secretInputs).toContain("connection");
    }
    const provider = run.one("pulumi:providers:docker", "prod-host-docker").inputs;
    expect(provider.host).toBe("ssh://deploy@gpu1.example.com:22");
    // Provider inputs travel JSON-encoded, as in a real run. The same string on every machine and run:
    // `~` is expanded by ssh, not by the program.
    const dir = "~/.mmagent/ssh/mmagent.prod.prod-host";
    expect(JSON.parse(provider.sshOpts)).toEqual([
        "-F", "/dev/null",
        "-o", `IdentityFile=${dir}/id_key`,
        "-o", "IdentitiesOnly=yes",
        "-o", "IdentityAgent=none",
        "-o", `UserKnownHostsFile=${dir}/known_hosts`,
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "UpdateHostKeys=no",
        "-o", "CheckHostIP=no",
        "-o", "BatchMode=yes",
    ]);
    // Paths only: not a secret, so a preview shows it.
    expect(run.one("pulumi:providers:docker", "prod-host-docker").secretInputs).toEqual([]);
});

test("the Docker provider's ssh gets the secret key and the pinned host key as private files, written before the provider exists", () => {
    const mode = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);
    expect([mode(path.dirname(path.dirname(SSH_DIR))), mode(path.dirname(SSH_DIR)), mode(SSH_DIR)]).toEqual(["700", "700", "700"]);
    expect(fs.readFileSync(path.join(SSH_DIR, "id_key"), "utf8")).toBe(SSH_KEY + "\n");
    expect(mode(path.join(SSH_DIR, "id_key"))).toBe("600");
    const hostKey = JSON.parse(stackFileConfig("prod")["mmagent:host"]).connection.hostKey;
    expect(fs.readFileSync(path.join(SSH_DIR, "known_hosts"), "utf8")).toBe(`gpu1.example.com ${hostKey}\n`);
    expect(mode(path.join(SSH_DIR, "known_hosts"))).toBe("600");
});

test("GPUs: the host prepares the listed GPUs, only inference gets them", () => {
    const prepare = run.one(REMOTE, "prod-host-prepare");
    expect(prepare.inputs.stdin).toContain(`MMAGENT_GPUS="$(printf '%s' '${Buffer.from("0,1").toString("base64")}' | base64 -d)"`);
    expect(prepare.inputs.stdin).toContain(Buffer.from("1.18.0-1").toString("base64"));
    // Structured device requests, never the `gpus` string that docker/cli misreads as device 0 plus a count.
    expect(run.one(CONTAINER, "prod-agents-inference").inputs.deviceRequests).toEqual([{ driver: "nvidia", deviceIds: ["0", "1"], capabilities: ["gpu"] }]);
    for (const c of run.byType(CONTAINER)) expect(c.inputs.gpus).toBeUndefined();
    for (const c of run.byType(CONTAINER).filter((x) => x.name !== "prod-agents-inference")) expect(c.inputs.deviceRequests).toBeUndefined();
    // The smoke test selects exactly the GPUs the containers get.
    expect(prepare.inputs.stdin).toContain(`MMAGENT_SMOKE_GPUS="$(printf '%s' '${Buffer.from("0,1").toString("base64")}' | base64 -d)"`);
    expect(outputs.gpus.value.map((g: any) => g.index)).toEqual([0, 1]);
});

test("each container depends on its pre-change snapshot, whose triggers hold the image", () => {
    const expected: Record<string, string> = {
        "prod-agents-agent": "ghcr.io/open-webui/open-webui:v0.6.34",
        "prod-agents-inference": "ollama/ollama:0.12.6",
        "prod-agents-cache": "redis:7.4.6-alpine",
        "prod-agents-vector-db": "pgvector/pgvector:0.8.1-pg17",
        "prod-edge-proxy": "caddy:2.10.2-alpine",
    };
    for (const [containerResource, image] of Object.entries(expected)) {
        const container = run.one(CONTAINER, containerResource);
        expect(container.inputs.image).toBe(image);
        const snapshotName = `prod-storage-${container.inputs.name}-pre-change`;
        const snapshot = run.one(REMOTE, snapshotName);
        expect(container.dependsOnUrns).toContain(snapshot.urn);
        expect(snapshot.inputs.triggers[0]).toBe(image);
        const changeId = run.one("random:index/randomId:RandomId", `prod-storage-${container.inputs.name}-change`);
        expect(changeId.inputs.keepers).toEqual({ image });
        expect(snapshot.inputs.triggers[1]).toBe(changeId.state.hex);
    }
});

test("the snapshot covers the service's writable volumes only, never its read-only input", () => {
    const snap = run.one(REMOTE, "prod-storage-prod-agent-pre-change");
    const stdin: string = snap.inputs.stdin;
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    expect(stdin).toContain(b64("agent-db agent-uploads agent-output agent-logs"));
    expect(stdin).toContain(b64("prod-agent")); // container stopped for a consistent snapshot
    expect(stdin).toContain(b64("20")); // retention keep
    expect(stdin).toContain(b64("mmagent-pre-0a0b0c0d")); // the pending restore source is protected from pruning
});

test("declarative restore: runs after the snapshot, before the agent starts, expects the configured image", () => {
    const restore = run.one(REMOTE, "prod-storage-prod-agent-restore");
    const snap = run.one(REMOTE, "prod-storage-prod-agent-pre-change");
    expect(restore.dependsOnUrns).toContain(snap.urn);
    expect(run.one(CONTAINER, "prod-agents-agent").dependsOnUrns).toContain(restore.urn);
    expect(restore.inputs.triggers).toEqual(["mmagent-pre-0a0b0c0d"]);
    expect(restore.inputs.update).toBe("true"); // one-shot: only a new restoreFrom runs it again
    expect(run.byType(REMOTE).filter((c) => c.name.endsWith("-restore")).map((c) => c.name)).toEqual(["prod-storage-prod-agent-restore"]);
});

test("ZFS datasets get the profile's properties", () => {
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    expect(run.one(REMOTE, "prod-storage-agent-db-ensure").inputs.stdin).toContain(b64("recordsize=16K compression=lz4 atime=off logbias=latency"));
    expect(run.one(REMOTE, "prod-storage-inference-models-ensure").inputs.stdin).toContain(b64("recordsize=1M compression=lz4 atime=off"));
    expect(run.one(REMOTE, "prod-storage-inference-models-ensure").inputs.stdin).toContain(b64("500"));
    expect(outputs.volumePaths.value["agent-db"]).toBe("/tank/mmagent/agent-db");
});

test("the proxy: public 80/443 with NET_BIND_SERVICE only, ACME with the e-mail", () => {
    const proxy = run.one(CONTAINER, "prod-edge-proxy");
    expect(proxy.inputs.ports.map((p: any) => `${p.ip}:${p.external}`)).toEqual(["0.0.0.0:80", "0.0.0.0:443"]);
    expect(proxy.inputs.capabilities).toEqual({ drops: ["ALL"], adds: ["CAP_NET_BIND_SERVICE"] });
    const config = JSON.parse(decodeScriptParams(run.one(REMOTE, "prod-edge-routes").inputs.stdin).MMAGENT_CONFIG);
    expect(config.apps.tls.automation.policies).toEqual([{ subjects: ["agent.example.com"], issuers: [{ module: "acme", email: "ops@example.com" }] }]);
    expect(outputs.urls.value).toEqual({ "agent.example.com": "https://agent.example.com/" });
});

test("the vector database is wired to the agent with a secret password", () => {
    const agent = run.one(CONTAINER, "prod-agents-agent");
    expect(agent.inputs.envs).toEqual(expect.arrayContaining(["VECTOR_DB=pgvector", expect.stringMatching(/^PGVECTOR_DB_URL=postgresql:\/\/postgres:pw-[\w-]+@prod-vector-db:5432\/postgres$/)]));
    const db = run.one(CONTAINER, "prod-agents-vector-db");
    expect(db.secretInputs).toContain("envs");
    expect(db.inputs).toMatchObject({ cpuSet: "13-15", memory: 8192, shmSize: 256 });
    // Canonical CAP_ names: what the moby client sends and the provider reads back, so no diff.
    expect(db.inputs.capabilities.adds).toEqual(["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID"]);
});

test("snapshots output lists the latest pre-change snapshot per container", () => {
    expect(Object.keys(outputs.snapshots.value).sort()).toEqual(["prod-agent", "prod-cache", "prod-inference", "prod-proxy", "prod-vector-db"]);
    expect(outputs.snapshots.value["prod-agent"].snapshot).toMatch(/^mmagent-pre-[0-9a-f]{8}$/);
});

test("passes every policy of the policy pack (policy/), with its default (prod) config", () => {
    expect(policyViolations(run)).toEqual([]);
});
