/**
 * The component provider (provider/PulumiPlugin.yaml, provider/index.ts): the schema
 * `@pulumi/pulumi/provider/experimental` infers from the provider's components
 * (provider/components/*.ts), asked for without the Pulumi CLI. All four are expressible: their
 * inputs, which of them are required, and their outputs are pinned exactly here, since they are
 * what every language's SDK is generated from. How they behave is test/unit/providerWrappers.test.ts.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { ComponentProvider, getPulumiComponents } from "@pulumi/pulumi/provider/experimental";
import * as providerModule from "../../provider";
import { COMPONENTS, PROVIDER_NAME } from "../../provider";
import { REPO_ROOT } from "../support/mockProgram";

jest.setTimeout(120_000);

const DIR = path.join(REPO_ROOT, "provider");
const SSH_INPUTS = ["sshHost", "sshPort", "sshUser", "sshHostKey", "sshPrivateKey", "dockerSshDir"];

let schema: any;
beforeAll(async () => {
    const provider = new ComponentProvider({ name: PROVIDER_NAME, components: COMPONENTS, dirname: DIR });
    schema = JSON.parse(await provider.getSchema());
});

const resource = (name: string) => schema.resources[`${PROVIDER_NAME}:index:${name}`];
const type = (name: string) => schema.types[`${PROVIDER_NAME}:index:${name}`];
const sorted = (names: Iterable<string>) => [...names].sort();

test("the provider serves the four components under mmagent:index", () => {
    expect(COMPONENTS.map((c) => c.name).sort()).toEqual(["MultimodalAgentStack", "NvidiaHost", "ReverseProxyNetwork", "StorageLayout"]);
    expect(PROVIDER_NAME).toBe("mmagent");
    expect(schema.name).toBe("mmagent");
    expect(Object.keys(schema.resources).sort()).toEqual([
        "mmagent:index:MultimodalAgentStack",
        "mmagent:index:NvidiaHost",
        "mmagent:index:ReverseProxyNetwork",
        "mmagent:index:StorageLayout",
    ]);
    for (const r of Object.values<any>(schema.resources)) expect(r.isComponent).toBe(true);
    // Only resources and types of this package: nothing refers to another provider's schema.
    expect(schema.dependencies).toEqual([]);
});

test("the plugin as Pulumi's Node.js runtime loads it: provider name from package.json, components from the entry point's exports", () => {
    // `pulumi package add` runs the plugin through @pulumi/pulumi/cmd/run-plugin: it requires the
    // package's `main`, serves every ComponentResource the module exports, and names the provider
    // after package.json's `name` (not PROVIDER_NAME), so the two must agree.
    const pkg = JSON.parse(fs.readFileSync(path.join(DIR, "package.json"), "utf8"));
    expect(pkg.name).toBe(PROVIDER_NAME);
    expect(pkg.main).toBe("index.ts");
    expect(pkg.version).toBe(JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")).version);
    expect(YAML.parse(fs.readFileSync(path.join(DIR, "PulumiPlugin.yaml"), "utf8"))).toEqual({ runtime: "nodejs" });
    expect(getPulumiComponents(providerModule).map((c) => c.name).sort()).toEqual(COMPONENTS.map((c) => c.name).sort());
});

/** Each component's inputs, the required ones, and its outputs, exactly. */
const EXPECTED: Record<string, { inputs: string[]; required: string[]; outputs: string[] }> = {
    NvidiaHost: {
        inputs: [...SSH_INPUTS, "gpus", "toolkitVersion", "cdi", "sysctls", "gpuSmokeTestImage", "smokeTestGpus"],
        required: [],
        outputs: ["gpus", "dockerVersion", "hasGpus", "dockerHost"],
    },
    StorageLayout: {
        inputs: [...SSH_INPUTS, "backend", "root", "volumes", "services", "keepSnapshots", "dockerNamePrefix", "previousPlacement"],
        required: ["root", "volumes"],
        outputs: ["paths", "dockerVolumeNames", "latestSnapshots", "placement", "gates"],
    },
    ReverseProxyNetwork: {
        inputs: [
            ...SSH_INPUTS,
            "configVolumeName",
            "configHostPath",
            "dataVolumeName",
            "networkName",
            "ipv6Subnet",
            "ipv4Subnet",
            "dockerAddressPools",
            "containerName",
            "engine",
            "image",
            "allowPublicBind",
            "bindAddress",
            "httpPort",
            "httpsPort",
            "tls",
            "acmeEmail",
            "adminApi",
            "routes",
            "storageGates",
        ],
        required: ["configVolumeName", "configHostPath", "dataVolumeName"],
        outputs: ["networkName", "proxyContainerName", "urls", "configApplied", "caCertificatePem"],
    },
    MultimodalAgentStack: {
        inputs: [...SSH_INPUTS, "namePrefix", "services", "networkName", "dockerVolumeNames", "storageGates", "hostGpus", "cdi"],
        required: ["namePrefix", "networkName", "dockerVolumeNames"],
        outputs: ["containerNames", "cachePassword"],
    },
};

test.each(Object.keys(EXPECTED))("%s: exactly these inputs (and required ones) and outputs", (name) => {
    const r = resource(name);
    const e = EXPECTED[name];
    expect(sorted(Object.keys(r.inputProperties))).toEqual(sorted(e.inputs));
    expect(sorted(r.requiredInputs ?? [])).toEqual(sorted(e.required));
    expect(sorted(Object.keys(r.properties))).toEqual(sorted(e.outputs));
    // Every output but the cache password (absent when the cache is off) is always there.
    expect(sorted(r.required ?? [])).toEqual(sorted(e.outputs.filter((o) => o !== "cachePassword")));
    // Each input says what it is for in every language's SDK.
    for (const [input, p] of Object.entries<any>(r.inputProperties)) expect([input, typeof p.description]).toEqual([input, "string"]);
});

test("what other components produce at deployment is an input (not plain); settings are plain", () => {
    const notPlain = (name: string) => sorted(Object.entries<any>(resource(name).inputProperties).filter(([, p]) => !p.plain).map(([k]) => k));
    expect(notPlain("NvidiaHost")).toEqual(["sshPrivateKey"]);
    expect(notPlain("StorageLayout")).toEqual(["previousPlacement", "sshPrivateKey"]);
    expect(notPlain("ReverseProxyNetwork")).toEqual(["configHostPath", "configVolumeName", "dataVolumeName", "sshPrivateKey", "storageGates"]);
    expect(notPlain("MultimodalAgentStack")).toEqual(["dockerVolumeNames", "networkName", "sshPrivateKey", "storageGates"]);
});

test("the object types and string enums the inputs and outputs use", () => {
    expect(Object.keys(schema.types).sort()).toEqual(
        [
            "AdminApi",
            "CacheServiceSettings",
            "GpuInfo",
            "ProxyConfigApplied",
            "ProxyEngine",
            "ProxyRoute",
            "ServiceGuard",
            "ServiceSettings",
            "ServiceVolumeMount",
            "ServicesSettings",
            "SnapshotInfo",
            "StorageBackend",
            "StoragePlacement",
            "TlsMode",
            "Volume",
            "VolumeProfile",
        ].map((t) => `mmagent:index:${t}`),
    );
    const enumValues = (t: string) => type(t).enum.map((m: any) => m.value);
    expect(enumValues("StorageBackend")).toEqual(["auto", "zfs", "btrfs", "dir"]);
    expect(enumValues("VolumeProfile")).toEqual(["db", "media", "models", "logs", "text", "cache"]);
    expect(enumValues("TlsMode")).toEqual(["acme", "internal", "off"]);
    expect(enumValues("AdminApi")).toEqual(["off", "loopback"]);
    expect(enumValues("ProxyEngine")).toEqual(["caddy", "haproxy"]);
    expect(resource("StorageLayout").inputProperties.volumes.items.$ref).toBe("#/types/mmagent:index:Volume");
    expect(sorted(Object.keys(type("Volume").properties))).toEqual(sorted(["name", "profile", "readOnly", "quotaGiB", "service", "nfsServer", "nfsExport", "nfsOptions"]));
    expect(sorted(type("Volume").required)).toEqual(["name", "profile"]);
    expect(sorted(Object.keys(type("ServicesSettings").properties))).toEqual(["agent", "cache", "inference", "vectorDb"]);
    expect(sorted(Object.keys(type("CacheServiceSettings").properties))).toEqual(sorted([...Object.keys(type("ServiceSettings").properties), "maxMemoryMiB"]));
    expect(sorted(Object.keys(type("ServiceSettings").properties))).toEqual(
        sorted(["enabled", "image", "cpuSet", "memoryMiB", "shmSizeMiB", "env", "gpus", "command", "healthcheck", "capAdd", "extraVolumes"]),
    );
    expect(sorted(Object.keys(type("ProxyRoute").properties))).toEqual(["host", "path", "port", "upstream"]);
    expect(sorted(Object.keys(type("ServiceGuard").properties))).toEqual(["container", "image", "restoreFrom", "stopGraceSeconds"]);
});
