/**
 * The dev stack (the real Pulumi.dev.yaml) evaluated under mocks: what the program declares.
 * Mocks prove the declarations; test/real proves the host side works.
 */
import { decodeScriptParams, MockRun, runProgram } from "../support/mockProgram";
import { policyViolations } from "../support/policyHarness";

let run: MockRun;
let outputs: Record<string, { value: any; secret: boolean }>;

beforeAll(async () => {
    ({ run, outputs } = await runProgram({ stack: "dev" }));
});

const CONTAINER = "docker:index/container:Container";

test("registers the four components with their type tokens", () => {
    const types = run.resources.filter((r) => r.type.startsWith("mmagent:")).map((r) => `${r.type} ${r.name}`);
    expect(types.sort()).toEqual([
        "mmagent:agent:MultimodalAgentStack dev-agents",
        "mmagent:host:NvidiaHost dev-host",
        "mmagent:network:ReverseProxyNetwork dev-edge",
        "mmagent:storage:StorageLayout dev-storage",
    ]);
});

test("every resource is parented to a component, and named after it", () => {
    const components = new Map(run.resources.filter((r) => r.type.startsWith("mmagent:")).map((r) => [r.urn, r.name]));
    for (const r of run.resources.filter((x) => !x.type.startsWith("mmagent:"))) {
        const parent = components.get(r.parentUrn);
        expect({ name: r.name, parent }).toEqual({ name: r.name, parent: expect.any(String) });
        expect(r.name.startsWith(parent!)).toBe(true);
    }
});

test("the network is IPv6 with the configured subnets", () => {
    const net = run.one("docker:index/network:Network", "dev-edge-network");
    expect(net.inputs).toMatchObject({
        name: "reverse_proxy",
        driver: "bridge",
        ipv6: true,
        ipamConfigs: [{ subnet: "fd6d:6d61:6765:1::/64" }, { subnet: "172.16.10.0/24" }],
    });
    // Declared with the gateways the daemon fills in after a restart, so nothing drifts.
    expect(net.inputs.ipamConfigs).toEqual([
        { subnet: "fd6d:6d61:6765:1::/64", gateway: "fd6d:6d61:6765:1::1" },
        { subnet: "172.16.10.0/24", gateway: "172.16.10.1" },
    ]);
});

test("containers: the enabled roles plus the proxy, each on the network with its name as alias", () => {
    const containers = run.byType(CONTAINER);
    expect(containers.map((c) => c.inputs.name).sort()).toEqual(["dev-agent", "dev-cache", "dev-inference", "dev-proxy"]);
    for (const c of containers) {
        expect(c.inputs.networksAdvanced).toEqual([{ name: "reverse_proxy", aliases: [c.inputs.name, expect.any(String)] }]);
        expect(c.deleteBeforeReplace).toBe(true);
        // The provider's Update ignores these two: a change must replace to reach the container.
        expect(c.replaceOnChanges).toEqual(["init", "healthcheck"]);
        // A grace instead of the provider's SIGKILL (timeout 0), the same for `docker stop`; an init that forwards SIGTERM.
        expect(c.inputs).toMatchObject({ init: true, destroyGraceSeconds: expect.any(Number), stopTimeout: c.inputs.destroyGraceSeconds });
        expect(c.inputs.destroyGraceSeconds).toBeGreaterThanOrEqual(10);
        expect(c.inputs.restart).toBe("unless-stopped");
        expect(c.inputs.healthcheck.tests.length).toBeGreaterThan(1);
    }
});

test("agent mounts: input read-only, text output and data writable, each from its own volume", () => {
    const agent = run.one(CONTAINER, "dev-agents-agent");
    const mounts = Object.fromEntries(agent.inputs.mounts.map((m: any) => [m.target, { source: m.source, readOnly: m.readOnly }]));
    expect(mounts).toEqual({
        "/app/backend/data": { source: "dev-agent-db", readOnly: false },
        "/app/backend/data/uploads": { source: "dev-agent-uploads", readOnly: false },
        "/input": { source: "dev-agent-input", readOnly: true },
        "/output": { source: "dev-agent-output", readOnly: false },
        "/app/logs": { source: "dev-agent-logs", readOnly: false },
    });
});

test("volumes bind the directories under the project-local root", () => {
    const vol = run.one("docker:index/volume:Volume", "dev-storage-agent-db");
    expect(vol.inputs.driverOpts).toEqual({ type: "none", o: "bind", device: expect.stringMatching(/\/\.mmagent-data\/dev\/agent-db$/) });
    expect(run.byType("docker:index/volume:Volume").map((v) => v.inputs.name).sort()).toEqual(
        ["dev-agent-db", "dev-agent-input", "dev-agent-logs", "dev-agent-output", "dev-agent-uploads", "dev-cache-data", "dev-inference-models", "dev-proxy-config", "dev-proxy-data"].sort(),
    );
});

test("no GPU is requested on a host without GPUs", () => {
    for (const c of run.byType(CONTAINER)) expect(c.inputs.gpus).toBeUndefined();
    expect(outputs.gpus.value).toEqual([]);
});

test("storage backend auto: one detect step on the host, snapshot steps declared anyway, and the dir answer warned about and recorded", () => {
    const detect = run.one("command:local:Command", "dev-storage-detect");
    expect(decodeScriptParams(detect.inputs.stdin)).toEqual({ MMAGENT_ACTION: "detect", MMAGENT_BACKEND: "auto", MMAGENT_ROOT: expect.stringMatching(/\/\.mmagent-data\/dev$/) });
    // Every ensure waits for the answer (the placement check needs it) and passes "auto" on: the script resolves it the same way.
    const ensure = run.one("command:local:Command", "dev-storage-agent-db-ensure");
    expect(ensure.dependsOnUrns).toContain(detect.urn);
    expect(decodeScriptParams(ensure.inputs.stdin).MMAGENT_BACKEND).toBe("auto");
    // Declared for a Btrfs or ZFS host; on this (mock) host the script answers {"snapshot": null}.
    const preChange = run.byType("command:local:Command").filter((c) => c.name.includes("pre-change"));
    expect(preChange.map((c) => c.name).sort()).toEqual(["dev-storage-dev-agent-pre-change", "dev-storage-dev-cache-pre-change", "dev-storage-dev-inference-pre-change", "dev-storage-dev-proxy-pre-change"]);
    expect(run.warnings.join("\n")).toMatch(/backend "auto" found no Btrfs or ZFS at \S+\/\.mmagent-data\/dev and uses plain directories, which takes no snapshots/);
    expect(outputs.snapshots.value).toEqual({});
    expect(outputs.storage.value).toEqual({ backend: "dir", root: expect.stringMatching(/\/\.mmagent-data\/dev$/) });
    // Containers wait for their snapshot step, which waits for the volumes to exist.
    const agent = run.one(CONTAINER, "dev-agents-agent");
    expect(agent.dependsOnUrns).toContain(run.urnOf("command:local:Command", "dev-storage-dev-agent-pre-change"));
    expect(run.one("command:local:Command", "dev-storage-dev-agent-pre-change").dependsOnUrns).toContain(ensure.urn);
});

/** The dev stack with some config replaced, in a fresh module registry (index.ts is evaluated once per registry). */
async function runWith(config: Record<string, unknown>): Promise<{ run: MockRun; outputs: Record<string, { value: any; secret: boolean }> }> {
    let result: { run: MockRun; outputs: Record<string, any> } | undefined;
    await jest.isolateModulesAsync(async () => {
        const mock: typeof import("../support/mockProgram") = await import("../support/mockProgram");
        result = await mock.runProgram({ stack: "dev", config: Object.fromEntries(Object.entries(config).map(([k, v]) => [`mmagent:${k}`, JSON.stringify(v)])) });
    });
    return result!;
}

test("proxy engine haproxy: the HAProxy image in master-worker mode, no Caddy environment, its config step signals a reload; the config text previews line by line", async () => {
    const h = await runWith({ proxy: { bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443, tls: "off", engine: "haproxy" } });
    const proxy = h.run.one(CONTAINER, "dev-edge-proxy");
    const step = h.run.one("command:local:Command", "dev-edge-routes");
    expect(proxy.inputs.image).toBe("haproxy:2.6.31-alpine");
    expect(proxy.inputs.command).toEqual(["haproxy", "-W", "-db", "-f", "/etc/caddy/mmagent/haproxy.cfg"]);
    expect(proxy.inputs.envs).toEqual([]);
    expect(proxy.inputs.ports).toEqual([{ internal: 8080, external: 8080, ip: "127.0.0.1", protocol: "tcp" }]);
    expect(proxy.inputs.capabilities).toEqual({ drops: ["ALL"] });
    expect(proxy.dependsOnUrns).toContain(step.urn);
    const params = decodeScriptParams(step.inputs.stdin);
    expect(params).toEqual({
        MMAGENT_CONFIG_DIR: expect.stringMatching(/\/\.mmagent-data\/dev\/proxy-config$/),
        MMAGENT_MOUNT: "/etc/caddy/mmagent",
        MMAGENT_ENGINE: "haproxy",
        MMAGENT_CONFIG: expect.stringContaining("use_backend be_dev-agent_8080 if { var(txn.mm_host) -m str agent.localhost }"),
        MMAGENT_CONTAINER: "dev-proxy",
        MMAGENT_IMAGE: "haproxy:2.6.31-alpine",
        MMAGENT_RELOAD: "signal",
    });
    expect(step.inputs.triggers).toEqual([params.MMAGENT_CONFIG.split("\n")]);
    expect(h.outputs.urls.value).toEqual(expect.objectContaining({ "agent.localhost": "http://agent.localhost:8080/" }));
});

test("storage backend dir: no detect step, no snapshot steps, the warning at preview time", async () => {
    const dir = await runWith({ storage: { backend: "dir", root: ".mmagent-data/dev" } });
    expect(dir.run.byType("command:local:Command").filter((c) => c.name.includes("pre-change") || c.name.endsWith("-detect"))).toEqual([]);
    expect(dir.run.warnings.join("\n")).toMatch(/backend "dir" takes no snapshots/);
    expect(dir.outputs.storage.value).toEqual({ backend: "dir", root: expect.stringMatching(/\/\.mmagent-data\/dev$/) });
});

test("an NFS input volume: a local-driver nfs volume with the safe options, no ensure step, mounted read-only, never snapshotted", async () => {
    const nfs = { server: "nas.example.com", export: "/exports/datasets", options: ["nconnect=4", "rsize=1048576"] };
    const services = { agent: { host: "agent.localhost", extraVolumes: [{ name: "datasets", profile: "media", target: "/datasets", readOnly: true, nfs }] } };
    const r = await runWith({ services });
    const vol = r.run.one("docker:index/volume:Volume", "dev-storage-datasets");
    expect(vol.inputs).toEqual({
        name: "dev-datasets",
        driver: "local",
        driverOpts: { type: "nfs", o: "addr=nas.example.com,nfsvers=4.2,hard,ro,nconnect=4,rsize=1048576", device: ":/exports/datasets" },
        labels: [
            { label: "mmagent.volume", value: "datasets" },
            { label: "mmagent.profile", value: "media" },
            { label: "mmagent.source", value: "nfs" },
            { label: "mmagent.access", value: "read-only" },
        ],
    });
    expect(r.run.byType("command:local:Command").map((c) => c.name)).not.toContain("dev-storage-datasets-ensure");
    for (const c of r.run.byType("command:local:Command").filter((x) => x.name.includes("pre-change"))) {
        expect(decodeScriptParams(c.inputs.stdin).MMAGENT_VOLUMES.split(" ")).not.toContain("datasets");
    }
    const agent = r.run.one(CONTAINER, "dev-agents-agent");
    expect(JSON.stringify(agent.inputs)).toMatch(/"volumeName":"dev-datasets","containerPath":"\/datasets","readOnly":true|"source":"dev-datasets","target":"\/datasets","readOnly":true|"readOnly":true,"source":"dev-datasets","target":"\/datasets"/);
    expect(r.outputs.volumePaths.value.datasets).toBeUndefined();
    expect(policyViolations(r.run)).toEqual([]);
});

test("hardening: nothing privileged, no Docker socket, all capabilities dropped, no-new-privileges", () => {
    for (const c of run.byType(CONTAINER)) {
        expect(c.inputs.privileged).toBe(false);
        expect(JSON.stringify(c.inputs.mounts ?? [])).not.toMatch(/docker\.sock/);
        expect(JSON.stringify(c.inputs.volumes ?? [])).not.toMatch(/docker\.sock/);
        expect(c.inputs.capabilities.drops).toEqual(["ALL"]);
        expect(c.inputs.securityOpts).toEqual(["no-new-privileges:true"]);
    }
});

test("the proxy publishes on 127.0.0.1 with unprivileged ports and needs no extra capability; HAProxy serves HTTPS for agent.localhost and redirects HTTP", () => {
    const proxy = run.one(CONTAINER, "dev-edge-proxy");
    expect(proxy.inputs.ports).toEqual([
        { internal: 8080, external: 8080, ip: "127.0.0.1", protocol: "tcp" },
        { internal: 8443, external: 8443, ip: "127.0.0.1", protocol: "tcp" },
    ]);
    expect(proxy.inputs.capabilities.adds).toBeUndefined();
    const config: string = decodeScriptParams(run.one("command:local:Command", "dev-edge-routes").inputs.stdin).MMAGENT_CONFIG;
    expect(config).toContain("  bind :8443 ssl crt /etc/caddy/mmagent/certs/ alpn h2,http/1.1");
    expect(config).toContain("  use_backend be_dev-agent_8080 if { var(txn.mm_host) -m str agent.localhost }");
    expect(config).toContain("  http-request redirect location https://%[req.hdr(host),field(1,:)]:8443%[pathq] code 308");
    // No admin endpoint at all: HAProxy reloads on a signal.
    expect(config).not.toMatch(/stats socket|admin/);
});

test("tls internal with engine haproxy: a CA of the stack's own and a certificate for each routed host, renewed by the up within its last 30 days", () => {
    const ca = run.one("tls:index/selfSignedCert:SelfSignedCert", "dev-edge-ca");
    expect(ca.inputs).toMatchObject({ isCaCertificate: true, validityPeriodHours: 87600, earlyRenewalHours: 8760, allowedUses: ["cert_signing", "crl_signing", "digital_signature"] });
    const certs = run.byType("tls:index/locallySignedCert:LocallySignedCert");
    expect(certs.map((c) => c.name)).toEqual(["dev-edge-cert-agent.localhost"]);
    expect(certs[0].inputs).toMatchObject({ validityPeriodHours: 9528, earlyRenewalHours: 720, allowedUses: ["digital_signature", "key_encipherment", "server_auth"] });
    expect(run.one("tls:index/certRequest:CertRequest", "dev-edge-cert-agent.localhost-request").inputs).toMatchObject({ dnsNames: ["agent.localhost"], subject: { commonName: "agent.localhost" } });
    for (const k of run.byType("tls:index/privateKey:PrivateKey")) expect(k.inputs).toEqual({ algorithm: "ECDSA", ecdsaCurve: "P256" });
    expect(outputs.proxyCaCertificate.value).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
});

test("routes and certificates are not the container's inputs: a host step writes them into the read-only config volume before the proxy starts; the keys only in its secret stdin", () => {
    const proxy = run.one(CONTAINER, "dev-edge-proxy");
    const step = run.one("command:local:Command", "dev-edge-routes");
    expect(proxy.inputs.uploads).toBeUndefined();
    expect(proxy.inputs.command).toEqual(["haproxy", "-W", "-db", "-f", "/etc/caddy/mmagent/haproxy.cfg"]);
    expect(proxy.inputs.mounts).toEqual([
        { type: "volume", source: "dev-proxy-data", target: "/data", readOnly: false },
        { type: "volume", source: "dev-proxy-config", target: "/etc/caddy/mmagent", readOnly: true },
    ]);
    expect(proxy.dependsOnUrns).toContain(step.urn);
    const params = decodeScriptParams(step.inputs.stdin);
    const cert = run.one("tls:index/locallySignedCert:LocallySignedCert", "dev-edge-cert-agent.localhost").state.certPem;
    expect(params).toEqual({
        MMAGENT_CONFIG_DIR: expect.stringMatching(/\/\.mmagent-data\/dev\/proxy-config$/),
        MMAGENT_MOUNT: "/etc/caddy/mmagent",
        MMAGENT_ENGINE: "haproxy",
        MMAGENT_CONFIG: expect.any(String),
        MMAGENT_CONTAINER: "dev-proxy",
        MMAGENT_IMAGE: proxy.inputs.image,
        MMAGENT_RELOAD: "signal",
        MMAGENT_CERTS: "1",
        MMAGENT_CERT_1: expect.stringMatching(/^-----BEGIN CERTIFICATE-----\n[\s\S]*-----BEGIN EC PRIVATE KEY-----\n[\s\S]*-----END EC PRIVATE KEY-----\n$/),
    });
    expect(params.MMAGENT_CERT_1.startsWith(cert)).toBe(true);
    expect(step.secretInputs).toEqual(["stdin"]);
    // The config as lines, and one line per certificate that shows a renewal, in the triggers.
    expect(step.inputs.triggers).toEqual([params.MMAGENT_CONFIG.split("\n"), ["agent.localhost certificate from 2026-11-24T00:00:00Z"]]);
    expect(JSON.stringify(step.inputs.triggers)).not.toMatch(/PRIVATE KEY/);
});

test("engine caddy with tls internal: Caddy's internal issuer, routes reloaded through the admin API on the container's loopback; no certificate resources", async () => {
    const c = await runWith({ proxy: { bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443, tls: "internal", engine: "caddy" } });
    const proxy = c.run.one(CONTAINER, "dev-edge-proxy");
    const step = c.run.one("command:local:Command", "dev-edge-routes");
    expect(proxy.inputs.command).toEqual(["caddy", "run", "--config", "/etc/caddy/mmagent/caddy.json"]);
    expect(proxy.inputs.image).toBe("caddy:2.10.2-alpine");
    const params = decodeScriptParams(step.inputs.stdin);
    expect(params).toEqual({
        MMAGENT_CONFIG_DIR: expect.stringMatching(/\/\.mmagent-data\/dev\/proxy-config$/),
        MMAGENT_MOUNT: "/etc/caddy/mmagent",
        MMAGENT_CONFIG: expect.any(String),
        MMAGENT_CONTAINER: "dev-proxy",
        MMAGENT_IMAGE: proxy.inputs.image,
        MMAGENT_RELOAD: "api",
        MMAGENT_ADMIN: "127.0.0.1:2019",
    });
    const config = JSON.parse(params.MMAGENT_CONFIG);
    expect(config.apps.http.servers.routes.routes).toEqual([
        expect.objectContaining({ match: [{ host: ["agent.localhost"] }], handle: [expect.objectContaining({ upstreams: [{ dial: "dev-agent:8080" }] })] }),
    ]);
    expect(config.apps.tls.automation.policies[0].issuers).toEqual([{ module: "internal" }]);
    expect(config.admin).toEqual({ listen: "127.0.0.1:2019", config: { persist: false } });
    // The same config as data in the triggers, so a preview shows a route change field by field.
    expect(step.inputs.triggers).toEqual([config]);
    expect(c.run.byType("tls:index/privateKey:PrivateKey")).toEqual([]);
    expect(c.outputs.proxyCaCertificate?.value).toBeUndefined();
});

test("secrets stay secret: passwords into envs and the Redis config, never in labels", () => {
    const agent = run.one(CONTAINER, "dev-agents-agent");
    expect(agent.secretInputs).toEqual(["envs"]);
    const envs: string[] = agent.inputs.envs;
    expect(envs).toEqual(expect.arrayContaining([expect.stringMatching(/^REDIS_URL=redis:\/\/:pw-dev-agents-cache-password-\w+@dev-cache:6379\/0$/)]));
    const cache = run.one(CONTAINER, "dev-agents-cache");
    expect(cache.secretInputs).toEqual(["uploads"]);
    expect(cache.inputs.uploads[0].content).toMatch(/^requirepass pw-dev-agents-cache-password-/m);
    for (const c of run.byType(CONTAINER)) expect(JSON.stringify(c.inputs.labels)).not.toMatch(/pw-/);
    for (const p of run.byType("random:index/randomPassword:RandomPassword")) expect(p.inputs).toMatchObject({ length: 32, special: false });
});

test("role wiring: the agent finds inference and cache by container name and waits for them", () => {
    const agent = run.one(CONTAINER, "dev-agents-agent");
    expect(agent.inputs.envs).toEqual(expect.arrayContaining(["OLLAMA_BASE_URL=http://dev-inference:11434", "MMAGENT_INPUT_DIR=/input", "MMAGENT_OUTPUT_DIR=/output", "WEBUI_NAME=mmagent (dev)"]));
    expect(agent.dependsOnUrns).toEqual(
        expect.arrayContaining([run.urnOf(CONTAINER, "dev-agents-cache"), run.urnOf(CONTAINER, "dev-agents-inference")]),
    );
    expect(run.one(CONTAINER, "dev-agents-inference").inputs).toMatchObject({ cpuSet: "0-1", memory: 4096 });
});

test("the host is prepared locally without GPUs, and storage waits for it", () => {
    const prepare = run.one("command:local:Command", "dev-host-prepare");
    expect(prepare.inputs.create).toContain('bash "$f"');
    expect(prepare.inputs.stdin).toContain("MMAGENT_GPUS=");
    const ensure = run.one("command:local:Command", "dev-storage-agent-db-ensure");
    expect(ensure.dependsOnUrns).toContain(prepare.urn);
    const provider = run.one("pulumi:providers:docker", "dev-host-docker");
    expect(provider.inputs.host).toBe("unix:///var/run/docker.sock");
});

test("outputs: URL, container names, volume paths", () => {
    expect(outputs.urls.value).toEqual({ "agent.localhost": "https://agent.localhost:8443/" });
    expect(outputs.containers.value).toEqual({ agent: "dev-agent", cache: "dev-cache", inference: "dev-inference", proxy: "dev-proxy" });
    expect(outputs.volumePaths.value["agent-db"]).toMatch(/\.mmagent-data\/dev\/agent-db$/);
    expect(outputs.snapshots.value).toEqual({});
    expect(outputs.dockerVersion.value).toBe("27.5.1");
});

test("passes every policy of the policy pack (policy/), with its default (prod) config", () => {
    expect(policyViolations(run)).toEqual([]);
});

test("volumes say whether they hold input data (read-only), which the policy pack enforces on every mount", () => {
    const access = Object.fromEntries(run.byType("docker:index/volume:Volume").map((v) => [v.inputs.name, v.inputs.labels.find((l: any) => l.label === "mmagent.access")?.value]));
    expect(access["dev-agent-input"]).toBe("read-only");
    expect(access["dev-proxy-config"]).toBe("read-only");
    expect(Object.entries(access).filter(([, a]) => a === "read-only").map(([n]) => n).sort()).toEqual(["dev-agent-input", "dev-proxy-config"]);
    expect(Object.values(access).every((a) => a === "read-only" || a === "read-write")).toBe(true);
});

describe("a storage move is refused before anything runs (a changed host path would replace every Docker volume, and fail)", () => {
    const { assertSamePlacement } = jest.requireActual("../../components/storageLayout") as typeof import("../../components/storageLayout");
    test("same backend and root, or no earlier deployment: accepted", () => {
        expect(() => assertSamePlacement(undefined, { backend: "dir", root: "/p/.mmagent-data/dev" })).not.toThrow();
        expect(() => assertSamePlacement({ backend: "btrfs", root: "/srv/m" }, { backend: "btrfs", root: "/srv/m" })).not.toThrow();
    });
    test.each([
        ["root changed", { backend: "btrfs" as const, root: "/srv/old" }, { backend: "btrfs" as const, root: "/srv/new" }, "mmagent:storage.root"],
        ["backend changed", { backend: "dir" as const, root: "/srv/m" }, { backend: "btrfs" as const, root: "/srv/m" }, "mmagent:storage.backend"],
    ])("%s: the error names the key, where the data is, and how to move it", (_what, previous, next, key) => {
        expect(() => assertSamePlacement(previous, next)).toThrow(key);
        expect(() => assertSamePlacement(previous, next)).toThrow(`The data is still at ${previous.root}`);
        expect(() => assertSamePlacement(previous, next)).toThrow("pulumi destroy");
    });
    test("the dev root comes from the project directory, whatever the current directory", () => {
        const { parseStackConfig } = jest.requireActual("../../components/config") as typeof import("../../components/config");
        const cwd = process.cwd();
        try {
            process.chdir("/tmp");
            const c = parseStackConfig({ storage: { backend: "dir", root: ".mmagent-data/dev" } }, { stackName: "dev", projectDir: "/proj", hasSshPrivateKey: false });
            expect(c.storage.root).toBe("/proj/.mmagent-data/dev");
        } finally {
            process.chdir(cwd);
        }
    });
});
