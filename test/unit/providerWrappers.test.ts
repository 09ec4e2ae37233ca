/**
 * The provider's components (provider/components/*.ts) under Pulumi mocks: each registers the
 * TypeScript API's component as its child with the resources it makes (over SSH with the pinned
 * host key, or locally), wired to the others through outputs (Docker volume names, storage
 * gates) instead of functions; the provider's `construct` builds them by token; and bad inputs
 * are refused before anything is registered, naming the input, with the stack config's own
 * reasons.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { ComponentProvider } from "@pulumi/pulumi/provider/experimental";
import { parseStackConfig } from "../../components/config";
import { COMPONENTS, MultimodalAgentStack, NvidiaHost, PROVIDER_NAME, ReverseProxyNetwork, StorageLayout } from "../../provider";
import { mockNewResource, RecordedResource, recordRegistrations, REPO_ROOT, resolve } from "../support/mockProgram";

jest.setTimeout(120_000);

type Registered = RecordedResource;

const registered: Registered[] = [];
const one = (type: string, name: string): Registered => {
    const found = registered.filter((r) => r.type === type && r.name === name);
    if (found.length !== 1) throw new Error(`expected one ${type} named ${name}, found ${found.length}: ${registered.filter((r) => r.type === type).map((r) => r.name).join(", ")}`);
    return found[0];
};
const byType = (type: string) => registered.filter((r) => r.type === type);
const value = async <T = any>(o: unknown): Promise<T> => (await resolve(o)).value as T;

const CONTAINER = "docker:index/container:Container";
const VOLUME = "docker:index/volume:Volume";
const LOCAL = "command:local:Command";
const REMOTE = "command:remote:Command";
const DOCKER_PROVIDER = "pulumi:providers:docker";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJFUExBQ0UtVEhJUy1XSVRILVlPVVItSE9TVFMtS0VZ";
const SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nprovider-test-key\n-----END OPENSSH PRIVATE KEY-----";
const AGENT_IMAGE = "ghcr.io/open-webui/open-webui:v0.6.34";

let sshDir: string;
let remote: { host: NvidiaHost; storage: StorageLayout };
let team: { host: NvidiaHost; storage: StorageLayout; edge: ReverseProxyNetwork; agents: MultimodalAgentStack };

beforeAll(async () => {
    sshDir = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-provider-ssh-"));
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => mockNewResource(args),
            call(args) {
                throw new Error(`unexpected invoke ${args.token}`);
            },
        },
        "mmagent-provider",
        "test",
        false,
        "organization",
    );
    recordRegistrations(registered);

    // An SSH host: the host preparation and its storage, each with its own ssh client directory.
    const gpuHost = new NvidiaHost("gpu-host", {
        sshHost: "gpu1.example.com",
        sshUser: "deploy",
        sshHostKey: HOST_KEY,
        sshPrivateKey: pulumi.secret(SSH_KEY),
        gpus: "0,1",
        dockerSshDir: path.join(sshDir, "host"),
    });
    remote = {
        host: gpuHost,
        storage: new StorageLayout(
            "gpu-storage",
            {
                sshHost: "gpu1.example.com",
                sshPort: 2222,
                sshUser: "deploy",
                sshHostKey: HOST_KEY,
                sshPrivateKey: pulumi.secret(SSH_KEY),
                dockerSshDir: path.join(sshDir, "storage"),
                backend: "zfs",
                root: "tank/mmagent",
                volumes: [{ name: "models", profile: "models", quotaGiB: 500 }],
            },
            { dependsOn: [gpuHost] },
        ),
    };

    // A local team stack composed as another language would compose it: outputs, not functions.
    const host = new NvidiaHost("team-host", {});
    const storage = new StorageLayout(
        "team-storage",
        {
            backend: "btrfs",
            root: "/srv/team",
            dockerNamePrefix: "team",
            volumes: [
                { name: "proxy-data", profile: "text", service: "team-proxy" },
                { name: "proxy-config", profile: "text", readOnly: true, service: "team-proxy" },
                { name: "inference-models", profile: "models", service: "team-inference" },
                { name: "agent-db", profile: "db", service: "team-agent", quotaGiB: 20 },
                { name: "agent-uploads", profile: "media", service: "team-agent" },
                { name: "agent-input", profile: "media", readOnly: true, service: "team-agent" },
                { name: "agent-output", profile: "text", service: "team-agent" },
                { name: "agent-logs", profile: "logs", service: "team-agent" },
                { name: "cache-data", profile: "cache", service: "team-cache" },
                { name: "datasets", profile: "media", readOnly: true, nfsServer: "nfs.example.com", nfsExport: "/exports/datasets", nfsOptions: ["nconnect=4"] },
            ],
            services: [
                { container: "team-proxy", image: "caddy:2.10.2-alpine", stopGraceSeconds: 10 },
                { container: "team-agent", image: AGENT_IMAGE, restoreFrom: "mmagent-pre-0a0b0c0d", stopGraceSeconds: 20 },
                { container: "team-inference", image: "ollama/ollama:0.12.6" },
                { container: "team-cache", image: "redis:7.4.6-alpine" },
            ],
        },
        { dependsOn: [host] },
    );
    const edge = new ReverseProxyNetwork(
        "team-edge",
        {
            configVolumeName: storage.dockerVolumeNames.apply((n) => n["proxy-config"]),
            configHostPath: storage.paths.apply((p) => p["proxy-config"]),
            dataVolumeName: storage.dockerVolumeNames.apply((n) => n["proxy-data"]),
            containerName: "team-proxy",
            networkName: "team-net",
            ipv4Subnet: "172.16.20.0/24",
            httpPort: 8080,
            httpsPort: 8443,
            routes: [{ host: "agent.localhost", upstream: "team-agent", port: 8080 }],
            storageGates: storage.gates,
        },
        { dependsOn: [host] },
    );
    const agents = new MultimodalAgentStack(
        "team-agents",
        {
            namePrefix: "team",
            networkName: edge.networkName,
            dockerVolumeNames: storage.dockerVolumeNames,
            storageGates: storage.gates,
            services: {
                agent: { env: { LOG_LEVEL: "debug" }, extraVolumes: [{ name: "datasets", target: "/datasets", readOnly: true }] },
                cache: { maxMemoryMiB: 512 },
            },
        },
        { dependsOn: [host] },
    );
    team = { host, storage, edge, agents };
    await value(agents.containerNames);
    await value(edge.configApplied);
    await value(storage.latestSnapshots);
    // Let pending registrations finish.
    await new Promise((r) => setTimeout(r, 50));
});

afterAll(() => fs.rmSync(sshDir, { recursive: true, force: true }));

test("each provider component registers under its mmagent:index token, with the TypeScript API's component as its child", () => {
    const pairs: [string, string, string][] = [
        ["NvidiaHost", "mmagent:host:NvidiaHost", "team-host"],
        ["StorageLayout", "mmagent:storage:StorageLayout", "team-storage"],
        ["ReverseProxyNetwork", "mmagent:network:ReverseProxyNetwork", "team-edge"],
        ["MultimodalAgentStack", "mmagent:agent:MultimodalAgentStack", "team-agents"],
    ];
    for (const [name, coreToken, resourceName] of pairs) {
        const wrapper = one(`${PROVIDER_NAME}:index:${name}`, resourceName);
        expect(one(coreToken, resourceName).parentUrn).toBe(wrapper.urn);
    }
});

test("NvidiaHost with ssh inputs: the prepare step runs over SSH with the pinned host key and the key as a secret", async () => {
    const prepare = one(REMOTE, "gpu-host-prepare");
    expect(prepare.inputs.connection).toMatchObject({ host: "gpu1.example.com", port: 22, user: "deploy", hostKey: HOST_KEY, privateKey: SSH_KEY });
    expect(prepare.secretInputs).toContain("connection");
    expect(prepare.inputs.stdin).toContain(`MMAGENT_GPUS="$(printf '%s' '${Buffer.from("0,1").toString("base64")}' | base64 -d)"`);
    expect(registered.filter((r) => r.type === LOCAL && r.name.startsWith("gpu-"))).toEqual([]);
    const provider = one(DOCKER_PROVIDER, "gpu-host-docker");
    expect(provider.inputs.host).toBe("ssh://deploy@gpu1.example.com:22");
    expect(JSON.parse(provider.inputs.sshOpts)).toContain(`UserKnownHostsFile=${sshDir}/host/known_hosts`);
    expect(fs.readFileSync(path.join(sshDir, "host", "known_hosts"), "utf8")).toBe(`gpu1.example.com ${HOST_KEY}\n`);
    expect(fs.readFileSync(path.join(sshDir, "host", "id_key"), "utf8")).toBe(SSH_KEY + "\n");
    expect((await value(remote.host.gpus)).map((g: any) => g.index)).toEqual([0, 1]);
    expect(await value(remote.host.hasGpus)).toBe(true);
    expect(await value(remote.host.dockerHost)).toBe("ssh://deploy@gpu1.example.com:22");
});

test("StorageLayout with ssh inputs: its steps run over SSH, its Docker volumes go through its own ssh Docker provider", () => {
    const ensure = one(REMOTE, "gpu-storage-models-ensure");
    expect(ensure.inputs.connection).toMatchObject({ host: "gpu1.example.com", port: 2222, user: "deploy", hostKey: HOST_KEY, privateKey: SSH_KEY });
    expect(ensure.inputs.stdin).toContain(Buffer.from("recordsize=1M compression=lz4 atime=off").toString("base64"));
    const provider = one(DOCKER_PROVIDER, "gpu-storage-docker");
    expect(provider.inputs.host).toBe("ssh://deploy@gpu1.example.com:2222");
    expect(fs.readFileSync(path.join(sshDir, "storage", "known_hosts"), "utf8")).toBe(`[gpu1.example.com]:2222 ${HOST_KEY}\n`);
    expect(one(VOLUME, "gpu-storage-models").provider).toMatch(new RegExp(`^${escape(provider.urn)}::`));
    // Its `dependsOn: [host]` reaches the host steps: they wait for the host's preparation.
    expect(ensure.dependsOnUrns).toContain(one(REMOTE, "gpu-host-prepare").urn);
});

test("a local host: every step runs locally, every component reaches the local Docker socket", () => {
    expect(registered.filter((r) => r.type === REMOTE && r.name.startsWith("team-"))).toEqual([]);
    for (const name of ["team-host-docker", "team-storage-docker", "team-edge-docker", "team-agents-docker"]) {
        expect(one(DOCKER_PROVIDER, name).inputs.host).toBe("unix:///var/run/docker.sock");
    }
    for (const c of byType(CONTAINER).filter((r) => r.name.startsWith("team-agents-"))) {
        expect(c.provider.startsWith(`${one(DOCKER_PROVIDER, "team-agents-docker").urn}::`)).toBe(true);
    }
});

test("StorageLayout: the volume list and guards become the real volumes, NFS volume, snapshots and restore", async () => {
    const db = one(VOLUME, "team-storage-agent-db");
    expect(db.inputs.name).toBe("team-agent-db");
    expect(db.inputs.driverOpts).toEqual({ type: "none", o: "bind", device: "/srv/team/agent-db" });
    expect(one(LOCAL, "team-storage-agent-db-ensure").inputs.create).toBeDefined();
    const nfs = one(VOLUME, "team-storage-datasets");
    expect(nfs.inputs.driverOpts).toEqual({ type: "nfs", o: "addr=nfs.example.com,nfsvers=4.2,hard,ro,nconnect=4", device: ":/exports/datasets" });
    expect(one(LOCAL, "team-storage-team-agent-restore").inputs.triggers).toEqual(["mmagent-pre-0a0b0c0d"]);
    expect(await value(team.storage.dockerVolumeNames)).toMatchObject({ "agent-db": "team-agent-db", datasets: "team-datasets", "proxy-config": "team-proxy-config" });
    expect((await value(team.storage.paths))["agent-db"]).toBe("/srv/team/agent-db");
    expect(await value(team.storage.placement)).toEqual({ backend: "btrfs", root: "/srv/team" });
    const gates = await value<Record<string, string>>(team.storage.gates);
    expect(gates["team-agent"].split(" ")).toEqual([one(LOCAL, "team-storage-team-agent-pre-change").urn, one(LOCAL, "team-storage-team-agent-restore").urn]);
    const snapshots = await value<Record<string, any>>(team.storage.latestSnapshots);
    expect(snapshots["team-agent"]).toMatchObject({ snapshot: expect.stringMatching(/^mmagent-pre-/), nextImage: AGENT_IMAGE, imageId: "", bytes: {} });
});

test("ReverseProxyNetwork: the proxy mounts the StorageLayout volumes by name and waits for its storage gates", async () => {
    const proxy = one(CONTAINER, "team-edge-proxy");
    expect(proxy.inputs.name).toBe("team-proxy");
    expect(proxy.inputs.mounts.map((m: any) => [m.source, m.target, m.readOnly])).toEqual([
        ["team-proxy-data", "/data", false],
        ["team-proxy-config", "/etc/caddy/mmagent", true],
    ]);
    expect(proxy.inputs.ports.map((p: any) => p.external)).toEqual([8080, 8443]);
    expect(proxy.dependsOnUrns).toContain(one(LOCAL, "team-storage-team-proxy-pre-change").urn);
    expect(one("docker:index/network:Network", "team-edge-network").inputs.name).toBe("team-net");
    expect(await value(team.edge.urls)).toEqual({ "agent.localhost": "https://agent.localhost:8443/" });
    expect(await value(team.edge.networkName)).toBe("team-net");
    expect(await value(team.edge.proxyContainerName)).toBe("team-proxy");
    expect((await value(team.edge.configApplied)).applied).toBe("written");
});

test("MultimodalAgentStack: services from plain settings, volumes from the name map, every container gated on the storage steps", async () => {
    const agent = one(CONTAINER, "team-agents-agent");
    expect(agent.inputs.name).toBe("team-agent");
    expect(agent.inputs.image).toBe(AGENT_IMAGE);
    expect(agent.inputs.envs).toContain("LOG_LEVEL=debug");
    expect(agent.inputs.networksAdvanced[0].name).toBe("team-net");
    expect(agent.inputs.mounts.map((m: any) => [m.source, m.target, m.readOnly])).toContainEqual(["team-datasets", "/datasets", true]);
    expect(agent.inputs.mounts.map((m: any) => m.source)).toContain("team-agent-db");
    expect(agent.dependsOnUrns).toEqual(
        expect.arrayContaining([one(LOCAL, "team-storage-team-agent-pre-change").urn, one(LOCAL, "team-storage-team-agent-restore").urn]),
    );
    expect(one(CONTAINER, "team-agents-cache").dependsOnUrns).toContain(one(LOCAL, "team-storage-team-cache-pre-change").urn);
    expect(byType(CONTAINER).map((c) => c.name).filter((n) => n.startsWith("team-agents-")).sort()).toEqual(["team-agents-agent", "team-agents-cache", "team-agents-inference"]);
    expect(await value(team.agents.containerNames)).toEqual({ inference: "team-inference", agent: "team-agent", cache: "team-cache" });
    const password = await resolve(team.agents.cachePassword);
    expect(password.secret).toBe(true);
    expect(password.value).toMatch(/^pw-team-agents-cache-password-/);
});

test("the provider's construct builds a component by its token and answers with its outputs", async () => {
    const provider = new ComponentProvider({ name: PROVIDER_NAME, components: COMPONENTS, dirname: path.join(REPO_ROOT, "provider") });
    const result = await provider.construct("lab-host", `${PROVIDER_NAME}:index:NvidiaHost`, { gpus: "all", toolkitVersion: "1.18.0-1" }, {});
    expect(await value(result.urn)).toBe(one(`${PROVIDER_NAME}:index:NvidiaHost`, "lab-host").urn);
    expect(Object.keys(result.state).sort()).toEqual(["dockerHost", "dockerVersion", "gpus", "hasGpus"]);
    expect(await value(result.state.dockerHost)).toBe("unix:///var/run/docker.sock");
    expect(await value(result.state.hasGpus)).toBe(true);
    expect((await value(result.state.gpus)).length).toBe(1);
    expect(one(LOCAL, "lab-host-prepare").parentUrn).toBe(one("mmagent:host:NvidiaHost", "lab-host").urn);
});

/** The InputPropertiesError a constructor throws, as { propertyPath: reason }. */
function refusal(make: () => unknown): Record<string, string> {
    try {
        make();
    } catch (e) {
        if (!pulumi.InputPropertiesError.isInstance(e)) throw e;
        for (const err of e.errors) expect(e.message).toContain(`  - ${err.propertyPath}: ${err.reason}`);
        return Object.fromEntries(e.errors.map((err) => [err.propertyPath, err.reason]));
    }
    throw new Error("expected the inputs to be refused");
}

const volumeInputs = { configVolumeName: "v-config", configHostPath: "/srv/x/proxy-config", dataVolumeName: "v-data" };

describe("bad inputs are refused before anything is registered, naming the input", () => {
    const countBefore = () => registered.length;

    test("NvidiaHost: the host key, the missing key and secret, a port without a host, GPU lists", () => {
        const before = countBefore();
        expect(refusal(() => new NvidiaHost("bad-1", { sshHost: "gpu1.example.com", sshHostKey: "ssh-ed25519 AAAA", sshPrivateKey: "k" }))).toEqual({
            sshHostKey: expect.stringContaining("ssh-keyscan"),
        });
        expect(refusal(() => new NvidiaHost("bad-2", { sshHost: "gpu1.example.com" }))).toEqual({ sshHostKey: expect.stringMatching(/pins the host's public key/) });
        // As in the stack config, the key is asked for once the connection itself is right.
        expect(refusal(() => new NvidiaHost("bad-2b", { sshHost: "gpu1.example.com", sshHostKey: HOST_KEY }))).toEqual({
            sshPrivateKey: expect.stringContaining("an ssh connection needs the private key"),
        });
        expect(refusal(() => new NvidiaHost("bad-3", { sshPort: 2222 }))).toEqual({ sshPort: expect.stringContaining("sshHost is not") });
        expect(refusal(() => new NvidiaHost("bad-4", { gpus: "0,0" }))).toEqual({ gpus: "each GPU may be listed once" });
        expect(Object.keys(refusal(() => new NvidiaHost("bad-5", { gpus: "fast", smokeTestGpus: "GPU-x" }))).sort()).toEqual(["gpus", "smokeTestGpus"]);
        expect(refusal(() => new NvidiaHost("bad-6", { gpus: pulumi.output("all") as unknown as string }))).toEqual({ gpus: expect.stringContaining("plain value") });
        expect(registered.length).toBe(before);
    });

    test("StorageLayout: a volume's profile, an NFS volume that is not read-only, a restore on dir, a relative root", () => {
        const before = countBefore();
        const problems = refusal(
            () =>
                new StorageLayout("bad-storage", {
                    backend: "dir",
                    root: "/srv/x",
                    volumes: [
                        { name: "db", profile: "fast" as any },
                        { name: "data", profile: "media", nfsServer: "nfs.example.com", nfsExport: "/exports/data" },
                        { name: "db", profile: "db" },
                    ],
                    services: [{ container: "x-agent", image: AGENT_IMAGE, restoreFrom: "mmagent-pre-0a0b0c0d" }],
                }),
        );
        expect(problems).toEqual({
            "volumes[0].profile": "use one of db, media, models, logs, text, cache",
            "volumes[1].readOnly": expect.stringContaining("set readOnly: true"),
            "volumes[2].name": expect.stringContaining("already used by volumes[0]"),
            "services[0].restoreFrom": expect.stringContaining("the dir backend takes no snapshots"),
        });
        expect(refusal(() => new StorageLayout("bad-root", { root: "./data", volumes: [] }))).toEqual({ root: expect.stringContaining("absolute path") });
        expect(refusal(() => new StorageLayout("bad-keep", { root: "/srv/x", volumes: [], keepSnapshots: 0 }))).toEqual({ keepSnapshots: "keep at least 1 snapshot" });
        expect(registered.length).toBe(before);
    });

    test("ReverseProxyNetwork: the stack config's proxy rules, said with these inputs' names", () => {
        const before = countBefore();
        const problems = refusal(
            () =>
                new ReverseProxyNetwork("bad-edge", {
                    ...volumeInputs,
                    tls: "acme",
                    bindAddress: "0.0.0.0",
                    routes: [{ host: "agent.localhost", upstream: "bad upstream", port: 8080 }],
                }),
        );
        expect(Object.keys(problems).sort()).toEqual(["acmeEmail", "bindAddress", "routes[0].host", "routes[0].upstream"]);
        expect(problems.acmeEmail).toBe('tls "acme" needs an e-mail for the ACME account: set acmeEmail');
        expect(problems.bindAddress).toMatch(/set allowPublicBind: true/);
        expect(problems["routes[0].host"]).toMatch(/ACME cannot issue a certificate for "agent.localhost"/);
        expect(registered.length).toBe(before);
    });

    test("MultimodalAgentStack: services checked by the stack config's schema, the volume map checked against what they mount", () => {
        const before = countBefore();
        const base = { namePrefix: "team", networkName: "net", dockerVolumeNames: {} };
        expect(refusal(() => new MultimodalAgentStack("bad-agents", { ...base, namePrefix: "t", services: { agent: { image: "open-webui", memoryMiB: 4 } } }))).toEqual({
            namePrefix: expect.stringContaining("use 2-32 characters"),
            "services.agent.image": 'pin the image: add a tag or a digest, e.g. "open-webui:1.2.3"',
            "services.agent.memoryMiB": "give at least 16 MiB",
        });
        // Rules across inputs, said with these inputs' names (the config's `host.gpus` is `hostGpus` here).
        expect(refusal(() => new MultimodalAgentStack("bad-gpus", { ...base, services: { inference: { gpus: "0" } } }))).toEqual({
            "services.inference.gpus": 'hostGpus is "none": set hostGpus to "all" or a list, or remove this key',
        });
        expect(refusal(() => new MultimodalAgentStack("bad-gpus-2", { ...base, hostGpus: "0,1", services: { inference: { gpus: "2" } } }))).toEqual({
            "services.inference.gpus[0]": "GPU 2 is not in hostGpus (0, 1): add it there or choose one of those",
        });
        expect(refusal(() => new MultimodalAgentStack("bad-volumes", { ...base, namePrefix: "team", services: { cache: { enabled: false } } }))).toEqual({
            dockerVolumeNames: expect.stringContaining('no Docker volume for "inference-models", "agent-db"'),
        });
        expect(registered.length).toBe(before);
    });

    test("the reasons are the stack config's own", () => {
        let config: Record<string, string> = {};
        try {
            parseStackConfig(
                { storage: { root: "/srv/x" }, services: { agent: { image: "open-webui", cpuSet: "3-1" } }, host: { connection: { kind: "ssh", host: "h.example.com", hostKey: "ssh-ed25519 AAAA" } } },
                { projectDir: "/", stackName: "s", hasSshPrivateKey: true },
            );
        } catch (e) {
            config = Object.fromEntries((e as pulumi.InputPropertiesError).errors.map((err) => [err.propertyPath, err.reason]));
        }
        const agents = refusal(
            () =>
                new MultimodalAgentStack("same-agents", {
                    namePrefix: "s",
                    networkName: "n",
                    dockerVolumeNames: {},
                    services: { agent: { image: "open-webui", cpuSet: "3-1" } },
                }),
        );
        expect(agents["services.agent.image"]).toBe(config["mmagent:services.agent.image"]);
        expect(agents["services.agent.cpuSet"]).toBe(config["mmagent:services.agent.cpuSet"]);
        const host = refusal(() => new NvidiaHost("same-host", { sshHost: "h.example.com", sshHostKey: "ssh-ed25519 AAAA", sshPrivateKey: "k" }));
        expect(host.sshHostKey).toBe(config["mmagent:host.connection.hostKey"]);
    });
});

function escape(s: string): string {
    return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
