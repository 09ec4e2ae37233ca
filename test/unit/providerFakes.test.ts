/**
 * The real-engine harness's provider fakes, one transformation at a time: what the provider and
 * the moby Go client send to the Engine API, what the provider's Read stores, and which diffs
 * replace. The e2e test shows the same on the engine; these pin each rule to its source.
 */
import { gpuDeviceRequests } from "../../components/gpus";
import { networkIpamConfigs } from "../../components/networkAddressing";
import {
    CONTAINER_SCHEMA,
    containerCreateRequest,
    deviceRequestsToDocker,
    durationNs,
    flattenDeviceRequests,
    goDurationString,
    normalizeCapabilities,
} from "../support/providers/dockerContainer";
import { NETWORK_SCHEMA } from "../support/providers/dockerNetwork";
import { schemaDiff } from "../support/providers/fake";
import { createWithFake, FAKES } from "../support/providers";
import { openssl } from "../support/providers/tls";
import { runProgram } from "../support/mockProgram";

test("capabilities: the Go client upper-cases and adds CAP_, except ALL (moby client/container_create.go normalizeCapabilities)", () => {
    expect(normalizeCapabilities(["chown", "SETUID", "CAP_SETGID", "cap_chown", "all"])).toEqual(["ALL", "CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"]);
});

test("capabilities declared without CAP_ replace the container on every up; canonical names do not", () => {
    const stored = { capabilities: { adds: ["CAP_CHOWN", "CAP_SETUID"], drops: ["ALL"] } };
    expect(schemaDiff(CONTAINER_SCHEMA, stored, { capabilities: { adds: ["CHOWN", "SETUID"], drops: ["ALL"] } })).toEqual([
        expect.objectContaining({ property: "capabilities", kind: "replace" }),
    ]);
    expect(schemaDiff(CONTAINER_SCHEMA, stored, { capabilities: { adds: ["CAP_SETUID", "CAP_CHOWN"], drops: ["ALL"] } })).toEqual([]);
});

test("GPUs: the program's device requests reach the Engine API exactly, and read back without a diff", () => {
    const cases: [Parameters<typeof gpuDeviceRequests>, object][] = [
        [["all", false], { Driver: "nvidia", Count: -1, DeviceIDs: [], Capabilities: [["gpu"]], Options: {} }],
        [[[0, 1], false], { Driver: "nvidia", Count: 0, DeviceIDs: ["0", "1"], Capabilities: [["gpu"]], Options: {} }],
        [[[1], true], { Driver: "cdi", Count: 0, DeviceIDs: ["nvidia.com/gpu=1"], Capabilities: [[]], Options: {} }],
    ];
    for (const [args, request] of cases) {
        const declared = gpuDeviceRequests(...args)!;
        const sent = deviceRequestsToDocker(declared as any)!;
        expect(sent).toEqual([request]);
        expect(schemaDiff(CONTAINER_SCHEMA, { deviceRequests: flattenDeviceRequests(sent) }, { deviceRequests: declared })).toEqual([]);
    }
    expect(gpuDeviceRequests("none", false)).toBeUndefined();
});

test("healthcheck durations: Read formats them with Go's Duration.String()", () => {
    expect([10e9, 60e9, 90e9, 0, 5e8, 3600e9].map(goDurationString)).toEqual(["10s", "1m0s", "1m30s", "0s", "500ms", "1h0m0s"]);
    expect(durationNs("1m30s")).toBe(90e9);
    expect(() => durationNs("10 seconds")).toThrow('cannot read duration "10 seconds"');
    // "1m" is not what Read stores: an in-place update on every preview; the program uses "10s"-style values.
    const stored = { healthcheck: { tests: ["CMD", "true"], interval: "1m0s", timeout: "0s", startPeriod: "0s", startInterval: "0s", retries: 0 } };
    expect(schemaDiff(CONTAINER_SCHEMA, stored, { healthcheck: { tests: ["CMD", "true"], interval: "1m" } })).toEqual([expect.objectContaining({ property: "healthcheck", kind: "update" })]);
});

test("memory: the daemon fills in swap = 2 × memory; left undeclared it is an in-place diff, declared it is none", () => {
    const stored = { memory: 2048, memorySwap: 4096 };
    expect(schemaDiff(CONTAINER_SCHEMA, stored, { memory: 2048 })).toEqual([expect.objectContaining({ property: "memorySwap", kind: "update" })]);
    expect(schemaDiff(CONTAINER_SCHEMA, stored, { memory: 2048, memorySwap: 4096 })).toEqual([]);
});

test("create request: MiB units, init always sent, created on the default bridge then moved, stop timeout in the config", () => {
    const { create, network } = containerCreateRequest({ name: "a", image: "b:1", memory: 64, memorySwap: 128, shmSize: 8, stopTimeout: 20, networksAdvanced: [{ name: "net", aliases: ["a"] }] });
    expect(create.HostConfig).toMatchObject({ Memory: 64 * 2 ** 20, MemorySwap: 128 * 2 ** 20, ShmSize: 8 * 2 ** 20, Init: false, NetworkMode: "bridge" });
    expect(create.StopTimeout).toBe(20);
    expect(network).toEqual({ name: "net", aliases: ["a"] });
    expect(() => containerCreateRequest({ name: "a", image: "b:1", gpus: "device=0,1" })).toThrow(/misreads/);
});

test("network: ipamConfigs without gateways are replaced once the daemon reports them (after a restart); the program declares them", () => {
    const afterRestart = { ipamConfigs: [{ subnet: "fd6d:6d61:6765:e2e::/64", gateway: "fd6d:6d61:6765:e2e::1" }, { subnet: "172.16.222.0/24", gateway: "172.16.222.1" }] };
    expect(schemaDiff(NETWORK_SCHEMA, afterRestart, { ipamConfigs: [{ subnet: "172.16.222.0/24" }, { subnet: "fd6d:6d61:6765:e2e::/64" }] })).toEqual([
        expect.objectContaining({ property: "ipamConfigs", kind: "replace" }),
    ]);
    expect(schemaDiff(NETWORK_SCHEMA, afterRestart, { ipamConfigs: networkIpamConfigs("mmagent-e2e", "fd6d:6d61:6765:e2e::/64", "172.16.222.0/24") })).toEqual([]);
    // An IPv4 subnet always: the daemon adds its own pool when none is declared (another replacement).
    expect(networkIpamConfigs("reverse_proxy", "fd6d:6d61:6765:0001::/64")).toEqual([
        { subnet: "fd6d:6d61:6765:1::/64", gateway: "fd6d:6d61:6765:1::1" },
        { subnet: expect.stringMatching(/^172\.16\.(1[2-9][0-9]|2[0-5][0-9])\.0\/24$/), gateway: expect.stringMatching(/^172\.16\.\d+\.1$/) },
    ]);
    expect(networkIpamConfigs("reverse_proxy", "fd00::/64")).toEqual(networkIpamConfigs("reverse_proxy", "fd00::/64"));
});

test("a computed property left out of the program keeps the stored value; a set ignores order", () => {
    expect(schemaDiff(CONTAINER_SCHEMA, { shmSize: 64, stopTimeout: 10, envs: ["A=1", "B=2"] }, { envs: ["B=2", "A=1"] })).toEqual([]);
});

test("every input of the dev and prod stacks' containers, networks and volumes is modelled by a fake", async () => {
    for (const stack of ["dev", "prod"]) {
        const { run } = await runProgram({
            stack,
            config: { "mmagent:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nunit\n-----END OPENSSH PRIVATE KEY-----" },
            secretKeys: ["mmagent:sshPrivateKey"],
        });
        for (const type of ["docker:index/container:Container", "docker:index/network:Network", "docker:index/volume:Volume"]) {
            const resources = run.byType(type);
            expect(resources.length).toBeGreaterThan(0);
            if (type.endsWith("Container")) expect(resources.map((r) => r.name)).toContain(`${stack}-edge-proxy`);
            for (const r of resources) expect(() => FAKES[type].check(r.inputs)).not.toThrow();
        }
        if (stack === "prod") {
            const inference = run.one("docker:index/container:Container", "prod-agents-inference").inputs;
            expect(containerCreateRequest(inference).create.HostConfig!.DeviceRequests).toEqual([{ Driver: "nvidia", Count: 0, DeviceIDs: ["0", "1"], Capabilities: [["gpu"]], Options: {} }]);
        }
        jest.resetModules();
    }
});

test.each([
    ["Container", "docker:index/container:Container", { name: "a", image: "b:1", devices: [{ hostPath: "/dev/fuse" }] }, '"devices"'],
    ["Container.mounts[]", "docker:index/container:Container", { name: "a", image: "b:1", mounts: [{ type: "volume", source: "v", target: "/x", bindOptions: {} }] }, '"bindOptions"'],
    ["Container.healthcheck", "docker:index/container:Container", { name: "a", image: "b:1", healthcheck: { tests: ["NONE"], startInterval: "1s" } }, '"startInterval"'],
    ["Network", "docker:index/network:Network", { name: "n", scope: "swarm" }, '"scope"'],
    ["Volume", "docker:index/volume:Volume", { name: "v", driverOpts: {}, extra: 1 }, '"extra"'],
    ["Command", "command:local:Command", { create: "true", logging: "stdout" }, '"logging"'],
])("an input no fake models is an error naming it: %s", (_what, type, inputs, names) => {
    expect(() => FAKES[type].check(inputs)).toThrow(names);
    expect(() => FAKES[type].check(inputs)).toThrow(/not modelled/);
});

describe("TLS provider fakes (hashicorp/terraform-provider-tls, as @pulumi/tls bridges it)", () => {
    const create = createWithFake;
    const sh = (args: string[], files: Record<string, string>) => openssl(files, () => args);

    it("a CA and a host certificate it signs: the chain verifies for the host name, with the extensions Go's x509 writes", async () => {
        const caKey = await create("tls:index/privateKey:PrivateKey", { algorithm: "ECDSA", ecdsaCurve: "P256" });
        expect(caKey.privateKeyPem).toMatch(/^-----BEGIN EC PRIVATE KEY-----\n/);
        const ca = await create("tls:index/selfSignedCert:SelfSignedCert", {
            privateKeyPem: caKey.privateKeyPem,
            subject: { commonName: "test CA" },
            isCaCertificate: true,
            validityPeriodHours: 240,
            allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
        });
        const key = await create("tls:index/privateKey:PrivateKey", { algorithm: "ECDSA", ecdsaCurve: "P256" });
        const csr = await create("tls:index/certRequest:CertRequest", { privateKeyPem: key.privateKeyPem, subject: { commonName: "agent.localhost" }, dnsNames: ["agent.localhost"] });
        const leaf = await create("tls:index/locallySignedCert:LocallySignedCert", {
            certRequestPem: csr.certRequestPem,
            caPrivateKeyPem: caKey.privateKeyPem,
            caCertPem: ca.certPem,
            validityPeriodHours: 48,
            earlyRenewalHours: 24,
            allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
        });
        expect(sh(["verify", "-CAfile", "ca.pem", "-verify_hostname", "agent.localhost", "-purpose", "sslserver", "leaf.pem"], { "ca.pem": ca.certPem, "leaf.pem": leaf.certPem })).toContain("leaf.pem: OK");
        const text = sh(["x509", "-in", "leaf.pem", "-noout", "-text"], { "leaf.pem": leaf.certPem });
        expect(text).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:FALSE/);
        expect(text).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature, Key Encipherment/);
        expect(text).toContain("DNS:agent.localhost");
        expect(Date.parse(leaf.validityEndTime) - Date.parse(leaf.validityStartTime)).toBe(48 * 3_600_000);
        expect(leaf.readyForRenewal).toBe(false);
    });

    it("renewal: a plan within early_renewal_hours of the end replaces the certificate; changing early_renewal_hours alone updates in place", () => {
        const fake = FAKES["tls:index/locallySignedCert:LocallySignedCert"];
        const inputs = { certRequestPem: "csr", caPrivateKeyPem: "k", caCertPem: "c", validityPeriodHours: 9528, earlyRenewalHours: 720, allowedUses: ["server_auth"] };
        const endsIn = (hours: number) => ({ ...inputs, validityEndTime: new Date(Date.now() + hours * 3_600_000).toISOString() });
        expect(fake.diff(endsIn(721), inputs)).toEqual([]);
        expect(fake.diff(endsIn(719), inputs)).toEqual([expect.objectContaining({ property: "readyForRenewal", kind: "replace" })]);
        expect(fake.diff(endsIn(2000), { ...inputs, earlyRenewalHours: 100 })).toEqual([expect.objectContaining({ property: "earlyRenewalHours", kind: "update" })]);
        // A change that opens the window replaces at once.
        expect(fake.diff(endsIn(2000), { ...inputs, earlyRenewalHours: 3000 }).map((d) => d.kind)).toContain("replace");
    });
});
