/**
 * Runs the real program (index.ts) under Pulumi mocks with a stack's real config file and
 * records every registered resource: type, name, inputs, which inputs are secret, parent,
 * explicit dependencies and deleteBeforeReplace. Mock outputs look like a real run's: commands
 * answer with the JSON their scripts print, RandomPassword results are secrets.
 *
 * One program import per test file (the SDK's module state is global).
 */
import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { containsSecret, reveal } from "./secrets";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");

export interface RecordedResource {
    type: string;
    name: string;
    urn: string;
    inputs: Record<string, any>;
    /** Top-level input names whose value is (or contains) a secret. */
    secretInputs: string[];
    parentUrn: string;
    dependsOnUrns: string[];
    deleteBeforeReplace: boolean;
    /** The resource option `replaceOnChanges`. */
    replaceOnChanges: string[];
    /** The state the mock returned. */
    state: Record<string, any>;
    /** The provider reference (`urn::id`), "" for the default provider. */
    provider: string;
}

/**
 * Patches the mock monitor so every registration is recorded with what `newResource` does not
 * receive: secrets, parent, dependencies, options, provider. Inputs are deserialized with
 * secrets unwrapped, for value assertions. Call after `setMocks`.
 */
export function recordRegistrations(recorded: RecordedResource[]): void {
    const monitor = pulumi.runtime.getMonitor() as any;
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, callback: any) => {
        const raw = req.getObject()?.toJavaScript() ?? {};
        recorded.push({
            type: req.getType(),
            name: req.getName(),
            urn: monitor.newUrn(req.getParent(), req.getType(), req.getName()),
            inputs: reveal(pulumi.runtime.deserializeProperties(req.getObject())),
            secretInputs: Object.keys(raw).filter((k) => containsSecret(raw[k])),
            parentUrn: req.getParent(),
            dependsOnUrns: req.getDependenciesList(),
            deleteBeforeReplace: req.getDeletebeforereplace(),
            replaceOnChanges: req.getReplaceonchangesList(),
            state: {},
            provider: req.getProvider(),
        });
        return original(req, callback);
    };
}

export interface MockRun {
    resources: RecordedResource[];
    byType(type: string): RecordedResource[];
    one(type: string, name: string): RecordedResource;
    urnOf(type: string, name: string): string;
    warnings: string[];
}

/** Config of a stack file as the Pulumi CLI would pass it: `mmagent:key` → string (objects as JSON). */
export function stackFileConfig(stack: string): Record<string, string> {
    const doc = YAML.parse(fs.readFileSync(path.join(REPO_ROOT, `Pulumi.${stack}.yaml`), "utf8")) as { config?: Record<string, unknown> };
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(doc.config ?? {})) out[k] = typeof v === "string" ? v : JSON.stringify(v);
    return out;
}

/** Decodes the base64 parameters from a host script's stdin (see hostScript.ts). */
export function decodeScriptParams(stdin: string): Record<string, string> {
    const params: Record<string, string> = {};
    // Each line decodes, checks the size (hostScript.ts paramLine), then exports.
    for (const m of stdin.matchAll(/^(MMAGENT_[A-Z0-9_]+)="\$\(printf '%s' '([A-Za-z0-9+/=]*)' \| base64 -d\)"; .*; export \1$/gm)) {
        params[m[1]] = Buffer.from(m[2], "base64").toString("utf8");
    }
    return params;
}

/** What the host scripts would print for these parameters. */
function scriptStdout(p: Record<string, string>): string {
    // backend auto: a dataset name is ZFS; a path is on no Btrfs here (plain directories).
    const backend = p.MMAGENT_BACKEND === "auto" ? (p.MMAGENT_ROOT?.startsWith("/") ? "dir" : "zfs") : p.MMAGENT_BACKEND;
    if (p.MMAGENT_ACTION === "detect") {
        return JSON.stringify({ requested: p.MMAGENT_BACKEND, backend, root: p.MMAGENT_ROOT, fsType: backend === "zfs" ? "zfs" : "ext2/ext3", probed: p.MMAGENT_ROOT });
    }
    if (p.MMAGENT_ACTION === "ensure") {
        const path = backend === "zfs" ? `/${p.MMAGENT_ROOT}/${p.MMAGENT_VOLUME}` : `${p.MMAGENT_ROOT}/${p.MMAGENT_VOLUME}`;
        return JSON.stringify({ volume: p.MMAGENT_VOLUME, path, backend });
    }
    if (p.MMAGENT_ACTION === "snapshot" && backend === "dir") return JSON.stringify({ snapshot: null, backend, volumes: {} });
    if (p.MMAGENT_ACTION === "snapshot") {
        const volumes = Object.fromEntries(p.MMAGENT_VOLUMES.split(" ").map((v) => [v, `${p.MMAGENT_ROOT}/${v}@${p.MMAGENT_SNAPSHOT}`]));
        return JSON.stringify({ snapshot: p.MMAGENT_SNAPSHOT, createdAt: "2026-11-23T12:00:00.000Z", image: "", nextImage: p.MMAGENT_NEXT_IMAGE, volumes });
    }
    if (p.MMAGENT_ACTION === "restore") return JSON.stringify({ restored: p.MMAGENT_SNAPSHOT, replacedBy: "mmagent-replaced-x", image: p.MMAGENT_EXPECT_IMAGE });
    if (p.MMAGENT_CONFIG !== undefined) {
        const sha256 = crypto.createHash("sha256").update(p.MMAGENT_CONFIG).digest("hex");
        return JSON.stringify({ file: `${p.MMAGENT_CONFIG_DIR}/${p.MMAGENT_ENGINE === "haproxy" ? "haproxy.cfg" : "caddy.json"}`, sha256, applied: "written" });
    }
    if (p.MMAGENT_GPUS !== undefined) {
        const ids = p.MMAGENT_GPUS === "none" ? [] : p.MMAGENT_GPUS === "all" ? ["0"] : p.MMAGENT_GPUS.split(",");
        const gpus = ids.map((id, i) => ({ index: i, uuid: `GPU-0000000${i}-0000-0000-0000-000000000000`, name: "NVIDIA H100 80GB HBM3", memoryMiB: 81559, driverVersion: "580.95.05" }));
        return JSON.stringify({ docker: "27.5.1", gpus, toolkitVersion: p.MMAGENT_GPUS === "none" ? "" : p.MMAGENT_TOOLKIT_VERSION, dockerRestarted: false, changed: [] });
    }
    throw new Error(`mock: unknown host script parameters ${JSON.stringify(Object.keys(p))}`);
}

let randomIdCounter = 0;

/** A PEM block of the given type whose body names the resource (base64 text, as a real one). */
export const mockPem = (type: string, resourceName: string) =>
    `-----BEGIN ${type}-----\n${Buffer.from(`mock ${type} of ${resourceName}`).toString("base64")}\n-----END ${type}-----\n`;

/** The password a mock RandomPassword generates. */
export const mockPassword = (resourceName: string) => `pw-${resourceName}-0123456789abcdef`;

/** What the mock monitor answers for a resource: like a real run's outputs, without doing anything. */
export function mockNewResource(args: pulumi.runtime.MockResourceArgs, lastOutputs: Record<string, unknown> = {}): { id: string | undefined; state: Record<string, any> } {
    const inputs = args.inputs as Record<string, any>;
    switch (args.type) {
        case "pulumi:pulumi:StackReference":
            // The engine reads the referenced stack's outputs from its latest checkpoint.
            return { id: args.id ?? inputs.name, state: { name: inputs.name, outputs: lastOutputs, secretOutputNames: [] } };
        case "command:local:Command":
        case "command:remote:Command":
            return { id: `${args.name}-id`, state: { ...inputs, stdout: scriptStdout(decodeScriptParams(reveal<string>(inputs.stdin))), stderr: "" } };
        case "random:index/randomPassword:RandomPassword":
            // As in a real run, the SDK marks `result` secret.
            return { id: `${args.name}-id`, state: { ...inputs, result: pulumi.secret(mockPassword(args.name)) } };
        case "random:index/randomId:RandomId":
            return { id: `${args.name}-id`, state: { ...inputs, hex: (0x1a2b3c00 + randomIdCounter++).toString(16), b64Std: "x" } };
        case "pulumi:providers:docker":
            return { id: undefined, state: { ...inputs } };
        // The TLS provider's outputs, as placeholders of the right shape (keys secret, as the SDK marks them).
        case "tls:index/privateKey:PrivateKey":
            return { id: `${args.name}-id`, state: { ...inputs, privateKeyPem: pulumi.secret(mockPem("EC PRIVATE KEY", args.name)), publicKeyPem: mockPem("PUBLIC KEY", args.name) } };
        case "tls:index/certRequest:CertRequest":
            return { id: `${args.name}-id`, state: { ...inputs, certRequestPem: mockPem("CERTIFICATE REQUEST", args.name) } };
        case "tls:index/selfSignedCert:SelfSignedCert":
        case "tls:index/locallySignedCert:LocallySignedCert":
            return {
                id: `${args.name}-id`,
                state: { ...inputs, certPem: mockPem("CERTIFICATE", args.name), validityStartTime: "2026-11-24T00:00:00Z", validityEndTime: "2027-12-26T00:00:00Z", readyForRenewal: false },
            };
        default:
            return { id: `${args.name}-id`, state: { ...inputs } };
    }
}

export interface RunOptions {
    stack: string;
    /** Extra or replacing config (`mmagent:key` → string). */
    config?: Record<string, string>;
    secretKeys?: string[];
    preview?: boolean;
    /** The stack's outputs from its last deployment, as its stack reference to itself reads them. @default {} (never deployed) */
    lastOutputs?: Record<string, unknown>;
}

export async function runProgram(opts: RunOptions): Promise<{ run: MockRun; outputs: Record<string, any> }> {
    const recorded: RecordedResource[] = [];
    const warnings: string[] = [];
    await pulumi.runtime.setMocks(
        {
            newResource(args) {
                const result = mockNewResource(args, opts.lastOutputs);
                const rec = recorded.find((r) => r.name === args.name && r.type === args.type);
                // Recorded state holds plain values (the secret Output is for the program).
                if (rec) rec.state = args.type === "random:index/randomPassword:RandomPassword" ? { ...result.state, result: mockPassword(args.name) } : result.state;
                return result;
            },
            call(args) {
                throw new Error(`unexpected invoke ${args.token}: the program must not call functions under test`);
            },
        },
        "mmagent",
        opts.stack,
        opts.preview ?? false,
        "organization",
    );
    recordRegistrations(recorded);
    const log = pulumi.log.warn;
    (pulumi.log as any).warn = (msg: string) => {
        warnings.push(msg);
    };

    const config = { ...stackFileConfig(opts.stack), ...(opts.config ?? {}) };
    pulumi.runtime.setAllConfig(config, opts.secretKeys);
    const program = await import(path.join(REPO_ROOT, "index.ts"));
    const outputs: Record<string, any> = {};
    for (const [k, v] of Object.entries(program)) outputs[k] = await resolve(v);
    // Let pending registrations finish.
    await new Promise((r) => setTimeout(r, 50));
    (pulumi.log as any).warn = log;

    const run: MockRun = {
        resources: recorded,
        warnings,
        byType: (type) => recorded.filter((r) => r.type === type),
        one(type, name) {
            const found = recorded.filter((r) => r.type === type && r.name === name);
            if (found.length !== 1) throw new Error(`expected one ${type} named ${name}, found ${found.length}: ${recorded.filter((r) => r.type === type).map((r) => r.name).join(", ")}`);
            return found[0];
        },
        urnOf(type, name) {
            return run.one(type, name).urn;
        },
    };
    return { run, outputs };
}

/** Resolves an Output (or plain value) to { value, secret }. */
export async function resolve(v: unknown): Promise<{ value: any; secret: boolean }> {
    if (pulumi.Output.isInstance(v)) {
        const out = v as pulumi.Output<unknown>;
        const value = await new Promise((r) => out.apply((x) => r(x)));
        const secret = await (out as any).isSecret;
        return { value, secret };
    }
    return { value: v, secret: false };
}
