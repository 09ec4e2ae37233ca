/**
 * The e2e test stack: the real Pulumi.dev.yaml with what a machine without a registry needs
 * changed — local test-double images built from Debian packages (test/e2e/images), Btrfs storage
 * on a loop device so upgrades get their pre-change snapshot, its own network, subnets and ports.
 */
import * as crypto from "crypto";
import Docker from "dockerode";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { REPO_ROOT, stackFileConfig } from "./mockProgram";
import { HAPROXY_TEST_IMAGE, TEST_IMAGE } from "./host";

/**
 * Everything the test stacks create on the engine starts with the tests' prefix `mmtest-`
 * (containers, volumes, networks), so scripts/reap-test-leftovers.sh finds what a killed run
 * left, and nothing of a real deployment on the same engine looks like it.
 */
export const E2E_PREFIX = "mmtest-e2e";
export const E2E_NETWORK = "mmtest-e2e";
export const E2E_HTTP_PORT = 18080;
export const E2E_HTTPS_PORT = 18443;
export const E2E_AGENT_HOST = "agent.localhost";

export const E2E_IMAGES = {
    agentV1: "local/mmagent-e2e-agent:1",
    agentV2: "local/mmagent-e2e-agent:2",
    inference: "local/mmagent-e2e-inference:1",
    vectorDb: "local/mmagent-e2e-vector-db:1",
} as const;

const IMAGES_DIR = path.join(REPO_ROOT, "test", "e2e", "images");
const BUSYBOX = "/bin/busybox";

function listFiles(dir: string): string[] {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? listFiles(path.join(dir, d.name)).map((f) => path.join(d.name, f)) : [d.name])).sort();
}

/** Builds the test-double images unless an image with the same sources is already there. */
export async function buildE2eImages(docker = new Docker()): Promise<void> {
    const builds: { tag: string; dir: string; args: Record<string, string> }[] = [
        { tag: E2E_IMAGES.agentV1, dir: "agent", args: { AGENT_VERSION: "1" } },
        { tag: E2E_IMAGES.agentV2, dir: "agent", args: { AGENT_VERSION: "2" } },
        { tag: E2E_IMAGES.inference, dir: "inference", args: {} },
        { tag: E2E_IMAGES.vectorDb, dir: "vector-db", args: {} },
    ];
    if (!fs.existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} missing: run scripts/test-host.sh up (installs busybox-static)`);
    for (const b of builds) {
        const src = path.join(IMAGES_DIR, b.dir);
        const files = listFiles(src);
        const hash = crypto.createHash("sha256");
        for (const f of files) hash.update(f).update(fs.readFileSync(path.join(src, f)));
        hash.update(JSON.stringify(b.args)).update(TEST_IMAGE);
        const digest = hash.digest("hex").slice(0, 16);
        const existing = await docker.getImage(b.tag).inspect().catch(() => undefined);
        if (existing?.Config?.Labels?.["mmagent.e2e.sources"] === digest) continue;

        const context = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-e2e-image-"));
        try {
            fs.cpSync(src, context, { recursive: true });
            fs.copyFileSync(BUSYBOX, path.join(context, "busybox"));
            const stream = await docker.buildImage({ context, src: [...files, "busybox"] }, { t: b.tag, buildargs: b.args, labels: { "mmagent.e2e.sources": digest }, rm: true });
            const events: any[] = await new Promise((resolve, reject) => docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res))));
            const failed = events.find((e) => e.error);
            if (failed) throw new Error(`building ${b.tag} failed: ${failed.error}`);
        } finally {
            fs.rmSync(context, { recursive: true, force: true });
        }
    }
}

export interface E2eStackOptions {
    /** Btrfs mount point for the stack's storage. */
    storageRoot: string;
    /** The agent's image. @default E2E_IMAGES.agentV1 */
    agentImage?: string;
    /** `services.agent.restoreFrom`. @default none */
    agentRestoreFrom?: string;
    /** `proxy.routes`. @default Pulumi.dev.yaml's */
    proxyRoutes?: { host: string; service: string; port: number; path?: string }[];
}

/** `mmagent:*` config for the e2e stack: Pulumi.dev.yaml plus the changes above. */
export function e2eStackConfig(opts: E2eStackOptions): Record<string, string> {
    const dev = Object.fromEntries(Object.entries(stackFileConfig("dev")).map(([k, v]) => [k, JSON.parse(v)])) as Record<string, any>;
    const services = dev["mmagent:services"];
    const config: Record<string, unknown> = {
        ...dev,
        "mmagent:namePrefix": E2E_PREFIX,
        "mmagent:storage": { backend: "btrfs", root: opts.storageRoot, retention: { keep: 5 } },
        "mmagent:network": { ...dev["mmagent:network"], name: E2E_NETWORK, ipv6Subnet: "fd6d:6d61:6765:e2e::/64", ipv4Subnet: "172.16.222.0/24" },
        "mmagent:proxy": {
            ...dev["mmagent:proxy"],
            // dev's engine is the default for tls internal, HAProxy: the test image with Debian's HAProxy.
            image: HAPROXY_TEST_IMAGE,
            httpPort: E2E_HTTP_PORT,
            httpsPort: E2E_HTTPS_PORT,
            ...(opts.proxyRoutes ? { routes: opts.proxyRoutes } : {}),
        },
        "mmagent:services": {
            ...services,
            inference: { ...services.inference, image: E2E_IMAGES.inference },
            agent: {
                ...services.agent,
                image: opts.agentImage ?? E2E_IMAGES.agentV1,
                ...(opts.agentRestoreFrom ? { restoreFrom: opts.agentRestoreFrom } : {}),
            },
            cache: { ...services.cache, image: TEST_IMAGE },
        },
    };
    return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
}

export const PROD_PREFIX = "mmtest-rprod";
export const PROD_NETWORK = "mmtest-rprod";
export const PROD_HTTP_PORT = 28080;
export const PROD_HTTPS_PORT = 28443;

export interface ProdOverSshOptions {
    /** The SSH test host (scripts/remote-test-host.sh env.json). */
    remote: { host: string; port: number; user: string; hostKey: string };
    storageRoot: string;
    /** @default E2E_IMAGES.agentV1 */
    agentImage?: string;
    agentRestoreFrom?: string;
}

/**
 * `mmagent:*` config for the prod example over SSH: the real Pulumi.prod.yaml changed only where
 * this machine must — the test host's address, port, user and host key; Btrfs on a loop device
 * instead of a ZFS pool; no GPU; Caddy's internal CA instead of ACME and the proxy on 127.0.0.1
 * with unprivileged ports (no public bind); local test-double images (no registry); CPU sets
 * within this machine's 2 cores; its own name prefix and network name (the engine is shared);
 * and the default sysctls (prod's vm.overcommit_memory would change this machine's kernel).
 */
export function prodOverSshStackConfig(opts: ProdOverSshOptions): Record<string, string> {
    const prod = Object.fromEntries(Object.entries(stackFileConfig("prod")).map(([k, v]) => [k, JSON.parse(v)])) as Record<string, any>;
    const services = prod["mmagent:services"];
    const host = prod["mmagent:host"];
    const config: Record<string, unknown> = {
        ...prod,
        "mmagent:namePrefix": PROD_PREFIX,
        "mmagent:allowPublicBind": false,
        "mmagent:host": {
            ...host,
            connection: { ...host.connection, ...opts.remote },
            gpus: "none",
            sysctls: undefined,
        },
        "mmagent:storage": { ...prod["mmagent:storage"], backend: "btrfs", root: opts.storageRoot },
        "mmagent:network": { ...prod["mmagent:network"], name: PROD_NETWORK },
        // prod's engine is Caddy (tls acme); it stays Caddy with its internal CA here.
        "mmagent:proxy": { ...prod["mmagent:proxy"], engine: "caddy", image: TEST_IMAGE, bindAddress: "127.0.0.1", httpPort: PROD_HTTP_PORT, httpsPort: PROD_HTTPS_PORT, tls: "internal", acmeEmail: undefined },
        "mmagent:services": {
            inference: { ...services.inference, image: E2E_IMAGES.inference, gpus: undefined, cpuSet: "0-1" },
            agent: {
                ...services.agent,
                image: opts.agentImage ?? E2E_IMAGES.agentV1,
                cpuSet: "1",
                ...(opts.agentRestoreFrom ? { restoreFrom: opts.agentRestoreFrom } : {}),
            },
            cache: { ...services.cache, image: TEST_IMAGE, cpuSet: "0" },
            vectorDb: { ...services.vectorDb, image: E2E_IMAGES.vectorDb, cpuSet: "1" },
        },
    };
    return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
}
