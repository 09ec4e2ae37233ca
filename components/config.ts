/**
 * The stack's configuration: one schema for every `mmagent:*` key, the defaults, and the
 * cross-field rules. `parseStackConfig` checks all of it before any resource is registered and
 * reports every problem at once, each with the config key path and how to fix it.
 */
import * as pulumi from "@pulumi/pulumi";
import * as ipaddr from "ipaddr.js";
import * as path from "path";
import { z } from "zod";
import { dockerEnvironmentProblem, DOCKER_PROVIDER_OVERRIDES } from "./dockerSsh";
import * as v from "./validators";
import { derivedIpv4Subnet } from "./networkAddressing";
import { roleVolumes } from "./roles";
import { STORAGE_BACKEND_CHOICES, VOLUME_PROFILES } from "./types";

export const CONFIG_NAMESPACE = "mmagent";

/** Images used when a stack does not name its own. Tags are exact; prod stacks add digests. */
export const DEFAULT_IMAGES = {
    proxy: "caddy:2.10.2-alpine",
    inference: "ollama/ollama:0.12.6",
    agent: "ghcr.io/open-webui/open-webui:v0.6.34",
    cache: "redis:7.4.6-alpine",
    vectorDb: "pgvector/pgvector:0.8.1-pg17",
    gpuSmokeTest: "nvidia/cuda:12.6.3-base-ubuntu24.04",
} as const;

export const DEFAULT_TOOLKIT_VERSION = "1.18.0-1";
export const DEFAULT_IPV6_SUBNET = "fd6d:6d61:6765::/64";
/** Ports Caddy uses inside its container for the health endpoint and the admin API. */
export const PROXY_HEALTH_PORT = 2020;
export const PROXY_ADMIN_PORT = 2019;

const gpuSelection = z.union(
    [
        z.literal("none"),
        z.literal("all"),
        z
            .array(v.gpuId)
            .min(1, "list at least one GPU, or use \"none\"")
            .max(v.LIMITS.gpus, `list at most ${v.LIMITS.gpus} GPUs, or use \"all\"`),
    ],
    { error: "use \"none\", \"all\" or a list of GPU indices/UUIDs such as [0, 1]" },
);

const connectionSchema = z.discriminatedUnion(
    "kind",
    [
        z.strictObject({ kind: z.literal("local") }),
        z.strictObject({
            kind: z.literal("ssh"),
            /** DNS name or IP address of the host. */
            host: v.hostAddress,
            /** @default 22 */
            port: v.port.default(22),
            /** @default "root" */
            user: v.unixUser.default("root"),
            /** The host's public key, pinned: the connection fails if the host presents another. */
            hostKey: v.sshHostKey,
        }),
    ],
    { error: "set kind to \"local\" or \"ssh\"" },
);

const hostSchema = z.strictObject({
    connection: connectionSchema.default({ kind: "local" }),
    gpus: gpuSelection.default("none"),
    toolkitVersion: v.debianVersion.default(DEFAULT_TOOLKIT_VERSION),
    cdi: z.boolean().default(false),
    sysctls: v.sysctls.default({ "fs.inotify.max_user_watches": "524288" }),
    gpuSmokeTestImage: v.imageReference.default(DEFAULT_IMAGES.gpuSmokeTest),
});

const storageSchema = z.strictObject({
    /**
     * "auto" (the default): the storage script decides on the host (storage.sh `resolve_backend`):
     * ZFS when the root names a dataset (`tank/mmagent`: no leading `/` or `.`), Btrfs when the
     * root path lies on a Btrfs filesystem, plain directories otherwise.
     */
    backend: z.enum(STORAGE_BACKEND_CHOICES, { error: "set backend to \"auto\", \"zfs\", \"btrfs\" or \"dir\"" }).default("auto"),
    /**
     * zfs (or auto with a dataset name): a dataset (`tank/mmagent`), at most 126 characters;
     * btrfs/dir/auto: an absolute path (dir or auto on a local host may be project-relative,
     * starting with `.` under auto), at most 1024 (validators.ts `LIMITS`).
     */
    root: z.string().min(1, "set the storage root"),
    retention: z.strictObject({ keep: z.number().int().min(1, "keep at least 1 snapshot").max(1000, "keep at most 1000 snapshots").default(10) }).default({ keep: 10 }),
    quotasGiB: z
        .record(
            v.resourceName,
            z
                .number()
                .positive("a quota is a positive number of GiB")
                .max(v.LIMITS.quotaGiB, `a quota is at most ${v.LIMITS.quotaGiB} GiB (1 PiB): for no limit, remove the entry`),
        )
        .default({}),
});

const networkSchema = z.strictObject({
    name: v.resourceName.or(z.literal("reverse_proxy")).default("reverse_proxy"),
    ipv6Subnet: v.ipv6Subnet.default(DEFAULT_IPV6_SUBNET),
    ipv4Subnet: v.ipv4Subnet.optional(),
    /**
     * The engine's own address pools, which the subnets must stay out of. Docker's built-in
     * local pools unless daemon.json sets `default-address-pools`: then list those here.
     */
    dockerAddressPools: z.array(v.anyCidr).default([...v.DOCKER_DEFAULT_ADDRESS_POOLS]),
});

const routeSchema = z.strictObject({
    host: v.dnsName,
    /** A service role (`agent`, `inference`, …) of this stack. */
    service: z.string(),
    port: v.port,
    path: z.string().regex(/^\/[A-Za-z0-9._~/-]*\*?$/, "use a path prefix such as \"/api/*\"").optional(),
});

const proxySchema = z.strictObject({
    image: v.imageReference.default(DEFAULT_IMAGES.proxy),
    bindAddress: v.ipAddress.default("127.0.0.1"),
    httpPort: v.port.default(80),
    httpsPort: v.port.default(443),
    tls: z.enum(["acme", "internal", "off"], { error: "set tls to \"acme\", \"internal\" or \"off\"" }).default("internal"),
    acmeEmail: z.email("use an e-mail address for the ACME account").optional(),
    /**
     * Caddy's admin API: "loopback" (the container's own 127.0.0.1, reached with `docker exec`; route
     * changes load in place), or "off" (route changes restart the proxy). Never published.
     */
    adminApi: z.enum(["off", "loopback"], { error: "set adminApi to \"off\" or \"loopback\": the admin API is never published" }).default("loopback"),
    routes: z.array(routeSchema).default([]),
});

/**
 * An NFS export mounted by Docker's `local` volume driver (storageLayout.ts `nfsVolumeArgs`):
 * read-only input data, NFSv4.2, `hard`; never snapshotted, restored or ensured on the host.
 */
const nfsSourceSchema = z.strictObject({
    /** DNS name or IP address of the NFS server (a name is resolved by dockerd at mount time). */
    server: v.hostAddress,
    /** The exported path, absolute (`/` is the NFSv4 pseudo-root). */
    export: v.nfsExport,
    /** Extra mount options from an allow-list (validators.ts `NFS_OPTIONS`), e.g. ["nconnect=4"]. @default [] */
    options: z.array(v.nfsOption).max(v.NFS_OPTIONS.length, `give at most ${v.NFS_OPTIONS.length} NFS options`).default([]),
});

const extraVolumeSchema = z.strictObject({
    name: v.resourceName,
    profile: z.enum(VOLUME_PROFILES, { error: `use one of ${VOLUME_PROFILES.join(", ")}` }),
    target: v.containerPath,
    readOnly: z.boolean().default(false),
    /** Mount this NFS export instead of a volume under storage.root; needs readOnly: true. */
    nfs: nfsSourceSchema.optional(),
});

function serviceSchema<R extends z.ZodRawShape>(defaults: { enabled: boolean; image: string }, roleShape: R) {
    return z.strictObject({
        enabled: z.boolean().default(defaults.enabled),
        image: v.imageReference.default(defaults.image),
        /** CPUs the container may run on, e.g. "0-3,5". @default unpinned */
        cpuSet: v.cpuSet.optional(),
        memoryMiB: z.number().int().min(16, "give at least 16 MiB").optional(),
        shmSizeMiB: z.number().int().min(1).optional(),
        env: z.record(v.envName, v.envValue).default({}),
        /** Restore this service's writable volumes from a snapshot on the next `pulumi up`. */
        restoreFrom: v.snapshotName.optional(),
        /** Publish this service through the proxy under this host name. */
        host: v.dnsName.optional(),
        extraVolumes: z.array(extraVolumeSchema).max(v.LIMITS.extraVolumes, `give a service at most ${v.LIMITS.extraVolumes} extra volumes`).default([]),
        gpus: gpuSelection.optional(),
        /** Replaces the image's command (when another image fills the role). @default the role's */
        command: z.array(z.string().max(1024)).min(1).optional(),
        /** Replaces the role's healthcheck, Docker `tests` form: ["CMD", "curl", "-f", "http://127.0.0.1:8080/"]. */
        healthcheck: z
            .array(z.string().max(1024))
            .min(2, "give the form and the command, e.g. [\"CMD\", \"curl\", \"-f\", \"http://127.0.0.1:8080/\"]")
            .refine((t) => ["CMD", "CMD-SHELL"].includes(t[0]), "start with \"CMD\" or \"CMD-SHELL\"")
            .optional(),
        /** Capabilities to add back after dropping ALL. @default the role's */
        capAdd: z.array(v.capability).optional(),
        ...roleShape,
    });
}

const servicesSchema = z.strictObject({
    inference: serviceSchema({ enabled: true, image: DEFAULT_IMAGES.inference }, {}).prefault({}),
    agent: serviceSchema({ enabled: true, image: DEFAULT_IMAGES.agent }, {}).prefault({}),
    cache: serviceSchema(
        { enabled: true, image: DEFAULT_IMAGES.cache },
        { maxMemoryMiB: z.number().int().min(8, "give the cache at least 8 MiB").default(256) },
    ).prefault({}),
    vectorDb: serviceSchema({ enabled: false, image: DEFAULT_IMAGES.vectorDb }, {}).prefault({}),
});

const stackConfigSchema = z.strictObject({
    /** Prefix of every name; the stack name by default. */
    namePrefix: v.resourceName.superRefine((prefix, ctx) => {
        // Said only of a name that is otherwise right, so that one problem gets one message.
        if (v.NAME_PATTERN.test(prefix) && prefix.length > v.LIMITS.namePrefix) {
            ctx.addIssue({
                code: "custom",
                message:
                    `use at most ${v.LIMITS.namePrefix} characters: the storage script takes container names of at most 32, and "<prefix>-inference" is 10 more ` +
                    "(the stack name is the default: set mmagent:namePrefix to a shorter name)",
            });
        }
    }),
    allowPublicBind: z.boolean().default(false),
    host: hostSchema.prefault({}),
    storage: storageSchema,
    network: networkSchema.prefault({}),
    proxy: proxySchema.prefault({}),
    services: servicesSchema.prefault({}),
});

export type StackConfig = z.output<typeof stackConfigSchema>;
export type HostConfig = StackConfig["host"];
export type StorageConfig = StackConfig["storage"];
export type NetworkConfig = StackConfig["network"];
export type ProxyConfig = StackConfig["proxy"];
export type ServicesConfig = StackConfig["services"];
export type ServiceRole = keyof ServicesConfig;
export type ServiceConfig = ServicesConfig[ServiceRole];
export const SERVICE_ROLES: readonly ServiceRole[] = ["inference", "agent", "cache", "vectorDb"];

/** The config as read from `Pulumi.<stack>.yaml`, before validation. */
export interface RawStackConfig {
    [key: string]: unknown;
}

export interface ConfigProblem {
    /** The key below `mmagent:`, or the environment variable's name when `environment` is set. */
    propertyPath: string;
    reason: string;
    /** The problem is an environment variable of the pulumi process, not a config key. */
    environment?: boolean;
}

/** What to do about a required key that is missing, where "set it" is not enough. */
const REQUIRED_HINTS: Record<string, string> = {
    "host.connection.hostKey":
        "an ssh connection pins the host's public key, so that no other machine can pose as the host: run `ssh-keyscan -t ed25519 -p <port> <host>` from a trusted network, " +
        "compare its fingerprint (`ssh-keygen -lf`) with the one the host prints (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), and paste \"ssh-ed25519 AAAA...\" here",
};

/** Where the program runs; needed to resolve a project-relative dev storage root. */
export interface ConfigContext {
    /**
     * Directory of Pulumi.yaml: a relative dev storage root is resolved against it, never against
     * the current directory, so the volumes' host paths (which replace a Docker volume when they
     * change) are the same from wherever `pulumi` runs.
     */
    projectDir: string;
    /** The stack name, the default `namePrefix`. */
    stackName: string;
    /** Whether the `sshPrivateKey` secret is set. */
    hasSshPrivateKey: boolean;
    /**
     * The pulumi process's environment: variables the Docker provider would read instead of the
     * program's inputs are refused (see dockerSsh.ts `DOCKER_PROVIDER_OVERRIDES`). @default {}
     */
    environment?: NodeJS.ProcessEnv;
}

/**
 * Validates and completes a stack's config. Throws one `pulumi.InputPropertiesError` listing
 * every problem, each with its `mmagent:` key path and how to fix it.
 */
export function parseStackConfig(raw: RawStackConfig, ctx: ConfigContext): StackConfig {
    const input = { namePrefix: ctx.stackName, ...raw };
    const problems: ConfigProblem[] = [];
    const parsed = stackConfigSchema.safeParse(input);
    if (!parsed.success) {
        for (const issue of parsed.error.issues) problems.push(...problemsFromIssue(issue, input));
    } else {
        problems.push(...crossFieldProblems(parsed.data, ctx));
    }
    for (const name of Object.keys(DOCKER_PROVIDER_OVERRIDES)) {
        const reason = dockerEnvironmentProblem(ctx.environment ?? {}, name);
        if (reason) problems.push({ propertyPath: name, reason, environment: true });
    }
    if (problems.length > 0) throw configError(problems);
    const config = parsed.data!;
    return resolvePaths(config, ctx);
}

function valueAt(root: unknown, path: PropertyKey[]): unknown {
    return path.reduce<unknown>((v, k) => (v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[k] : undefined), root);
}

function problemsFromIssue(issue: z.core.$ZodIssue, input: unknown): ConfigProblem[] {
    const path = formatPath(issue.path);
    if (issue.code === "unrecognized_keys") {
        return issue.keys.map((key) => ({
            propertyPath: path ? `${path}.${key}` : key,
            reason: `unknown key "${key}": remove it or check its spelling (see the config reference in README.md)`,
        }));
    }
    if (issue.code === "invalid_union" && "errors" in issue && Array.isArray(issue.errors) && issue.errors.length > 0) {
        // Report the branch that got furthest, not "invalid input".
        const best = issue.errors.reduce((a, b) => (deepest(b) > deepest(a) ? b : a));
        if (best.length > 0 && deepest(best) > 0) return best.flatMap((i) => problemsFromIssue({ ...i, path: [...issue.path, ...i.path] }, input));
    }
    if (issue.code === "invalid_key") {
        // A record key of the wrong shape: report the key schema's own message.
        return [{ propertyPath: path, reason: `invalid key: ${issue.issues[0]?.message ?? issue.message}` }];
    }
    let reason = issue.message;
    if (issue.code === "invalid_type" && valueAt(input, issue.path) === undefined) reason = REQUIRED_HINTS[path] ?? "this key is required: set it in Pulumi.<stack>.yaml";
    else if (issue.code === "invalid_type") reason = `expected ${issue.expected}: ${issue.message}`;
    return [{ propertyPath: path || "(config)", reason }];
}

/** How far a union branch got: a wrong type or a wrong literal at the top says "not this branch". */
function deepest(issues: z.core.$ZodIssue[]): number {
    return Math.max(0, ...issues.map((i) => i.path.length + (i.code === "invalid_type" || i.code === "invalid_value" ? 0 : 1)));
}

export function formatPath(path: PropertyKey[]): string {
    return path.reduce<string>((acc, part) => (typeof part === "number" ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part)), "");
}

export function configError(problems: ConfigProblem[]): pulumi.InputPropertiesError {
    const where = (p: ConfigProblem) => (p.environment ? `$${p.propertyPath}` : `${CONFIG_NAMESPACE}:${p.propertyPath}`);
    const lines = problems.map((p) => `  - ${where(p)}: ${p.reason}`);
    return new pulumi.InputPropertiesError({
        message: `The stack's configuration has ${problems.length} problem(s); nothing was changed:\n${lines.join("\n")}`,
        errors: problems.map((p) => ({ propertyPath: where(p), reason: p.reason })),
    });
}

/** Rules that span keys: they run only once every key has the right shape. */
function crossFieldProblems(c: StackConfig, ctx: ConfigContext): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const add = (propertyPath: string, reason: string) => problems.push({ propertyPath, reason });

    // Host access.
    if (c.host.connection.kind === "ssh" && !ctx.hasSshPrivateKey) {
        add("sshPrivateKey", "an ssh connection needs the private key: `pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519`");
    }
    if (Array.isArray(c.host.gpus) && new Set(c.host.gpus.map(String)).size !== c.host.gpus.length) {
        add("host.gpus", "each GPU may be listed once");
    }

    // Storage root per backend ("auto" with a dataset name is ZFS; with a path, Btrfs or dir).
    const root = c.storage.root;
    const backend = c.storage.backend;
    const asZfs = backend === "zfs" || (backend === "auto" && isDatasetRoot(root));
    if (!asZfs && root.length > v.LIMITS.storageRootPath) {
        add("storage.root", `a storage root has at most ${v.LIMITS.storageRootPath} characters (this one has ${root.length}): choose a shorter path`);
    } else if (asZfs) {
        const r = v.zfsDataset.safeParse(root);
        if (!r.success) add("storage.root", `for the zfs backend${backend === "auto" ? " (auto: a root without a leading '/' or '.' names a ZFS dataset)" : ""}, ${r.error.issues[0].message}`);
    } else {
        const abs = v.absolutePath.safeParse(root);
        const relativeAllowed = (backend === "dir" || backend === "auto") && c.host.connection.kind === "local";
        if (!abs.success) {
            if (!root.startsWith("/") && relativeAllowed && v.RELATIVE_PATH_PATTERN.test(root) && !root.split("/").includes("..")) {
                // A project-relative dev path: resolved against the project directory later.
            } else if (!root.startsWith("/")) {
                add(
                    "storage.root",
                    relativeAllowed
                        ? `use an absolute path, or a path inside the project without '..' such as ".mmagent-data/dev"${backend === "auto" ? " (under auto, a relative path starts with '.': other names are ZFS datasets)" : ""}`
                        : backend === "auto"
                          ? "on an ssh host, give a ZFS dataset such as \"tank/mmagent\" or an absolute path such as \"/srv/mmagent\""
                          : `the ${backend} backend${c.host.connection.kind === "ssh" ? " on an ssh host" : ""} needs an absolute path such as "/srv/mmagent"`,
                );
            } else {
                add("storage.root", abs.error.issues[0].message);
            }
        }
    }

    // Volumes: the fixed ones per role plus extras must be unique; quotas must name one of them.
    const volumeNames = new Map<string, string>();
    for (const plan of plannedVolumeNames(c)) {
        if (volumeNames.has(plan.name)) add(plan.path, `volume name "${plan.name}" is already used by ${volumeNames.get(plan.name)}: choose another name`);
        else volumeNames.set(plan.name, plan.path);
    }
    for (const name of Object.keys(c.storage.quotasGiB)) {
        if (!volumeNames.has(name)) add(`storage.quotasGiB.${name}`, `no volume is named "${name}"; known volumes: ${[...volumeNames.keys()].sort().join(", ")}`);
    }

    // Services.
    const enabled = new Set(SERVICE_ROLES.filter((r) => c.services[r].enabled));
    for (const role of SERVICE_ROLES) {
        const s = c.services[role];
        const at = `services.${role}`;
        if (s.restoreFrom && c.storage.backend === "dir") {
            add(`${at}.restoreFrom`, "the dir backend takes no snapshots, so there is nothing to restore: use storage.backend zfs, btrfs or auto");
        }
        if (s.restoreFrom && !s.enabled) add(`${at}.restoreFrom`, "this service is disabled: enable it or remove restoreFrom");
        if (s.gpus !== undefined && s.gpus !== "none") {
            if (c.host.gpus === "none") {
                add(`${at}.gpus`, "host.gpus is \"none\": set host.gpus to \"all\" or a list, or remove this key");
            } else if (Array.isArray(c.host.gpus) && Array.isArray(s.gpus)) {
                const hostIds = new Set(c.host.gpus.map(String));
                for (const [i, id] of s.gpus.entries()) {
                    if (!hostIds.has(String(id))) add(`${at}.gpus[${i}]`, `GPU ${id} is not in host.gpus (${c.host.gpus.join(", ")}): add it there or choose one of those`);
                }
            }
        }
        const targets = new Set(roleMountTargets(role));
        for (const [i, ev] of s.extraVolumes.entries()) {
            if (targets.has(ev.target)) add(`${at}.extraVolumes[${i}].target`, `${ev.target} is already mounted in this container: choose another path`);
            targets.add(ev.target);
            // NFS volumes are shared inputs: mounted read-only, never snapshotted or restored.
            if (ev.nfs && !ev.readOnly) {
                add(`${at}.extraVolumes[${i}].readOnly`, "an NFS volume is read-only input data (it is never snapshotted or restored): set readOnly: true");
            }
            if (ev.nfs && c.storage.quotasGiB[ev.name] !== undefined) {
                add(`storage.quotasGiB.${ev.name}`, `"${ev.name}" is an NFS volume: its size is the NFS server's business; remove this quota`);
            }
            const seen = new Set<string>();
            for (const [j, o] of (ev.nfs?.options ?? []).entries()) {
                const key = o.split("=")[0];
                if (seen.has(key)) add(`${at}.extraVolumes[${i}].nfs.options[${j}]`, `"${key}" is given twice: keep one`);
                seen.add(key);
            }
        }
    }

    // Subnets: outside the engine's own pools, where a fixed subnet fails as soon as another network holds the pool.
    const subnets = [
        { key: "network.ipv4Subnet", subnet: c.network.ipv4Subnet ?? derivedIpv4Subnet(c.network.name), derived: c.network.ipv4Subnet === undefined },
        { key: "network.ipv6Subnet", subnet: c.network.ipv6Subnet, derived: false },
    ];
    for (const { key, subnet, derived } of subnets) {
        const pool = c.network.dockerAddressPools.find((p) => v.cidrsOverlap(subnet, p));
        if (!pool) continue;
        add(
            key,
            `${derived ? `the default ${subnet} (derived from the network name)` : subnet} overlaps Docker's address pool ${pool}, from which the engine gives subnets to ` +
                "the default bridge, `docker network create` and Compose: on a host where another network holds it, creating this one fails " +
                "(\"Pool overlaps with other one on this address space\"). Choose a subnet outside network.dockerAddressPools, e.g. \"172.16.10.0/24\"",
        );
    }

    // Proxy ports and addresses.
    const p = c.proxy;
    if (p.httpPort === p.httpsPort) add("proxy.httpsPort", `httpPort and httpsPort are both ${p.httpPort}: give them different ports`);
    for (const key of ["httpPort", "httpsPort"] as const) {
        if (p[key] === PROXY_HEALTH_PORT || p[key] === PROXY_ADMIN_PORT) {
            add(`proxy.${key}`, `port ${p[key]} is used inside the proxy container for its health/admin endpoint: choose another`);
        }
    }
    if (isUnspecified(p.bindAddress) && !c.allowPublicBind) {
        add("proxy.bindAddress", `${p.bindAddress} publishes the proxy on every interface: set a specific address, or set allowPublicBind: true to mean it`);
    }
    if (p.tls === "acme" && !p.acmeEmail) add("proxy.acmeEmail", "tls \"acme\" needs an e-mail for the ACME account: set proxy.acmeEmail");
    if (p.tls === "acme") {
        for (const host of allRouteHosts(c)) {
            if (host.host.endsWith(".localhost") || host.host === "localhost") {
                add(host.path, `ACME cannot issue a certificate for "${host.host}": use a public name, or set proxy.tls to "internal"`);
            }
        }
    }
    const seenRoutes = new Map<string, string>();
    for (const r of allRouteHosts(c)) {
        // Host names are case-insensitive: Agent.example.com and agent.example.com are one route.
        const key = `${r.host.toLowerCase()}${r.routePath ?? ""}`;
        if (seenRoutes.has(key)) add(r.path, `route ${key} is already defined at ${seenRoutes.get(key)} (host names are compared without case): remove one of them`);
        else seenRoutes.set(key, r.path);
    }
    for (const [i, r] of p.routes.entries()) {
        if (!(SERVICE_ROLES as readonly string[]).includes(r.service)) {
            add(`proxy.routes[${i}].service`, `no service "${r.service}": use one of ${SERVICE_ROLES.join(", ")}`);
        } else if (!enabled.has(r.service as ServiceRole)) {
            add(`proxy.routes[${i}].service`, `service "${r.service}" is disabled: enable services.${r.service} or remove this route`);
        }
    }
    return problems;
}

function isUnspecified(address: string): boolean {
    return ipaddr.parse(address).range() === "unspecified";
}

function allRouteHosts(c: StackConfig): { host: string; routePath?: string; path: string }[] {
    const out: { host: string; routePath?: string; path: string }[] = [];
    for (const role of SERVICE_ROLES) {
        const s = c.services[role];
        if (s.enabled && s.host) out.push({ host: s.host, path: `services.${role}.host` });
    }
    c.proxy.routes.forEach((r, i) => out.push({ host: r.host, routePath: r.path, path: `proxy.routes[${i}].host` }));
    return out;
}

function plannedVolumeNames(c: StackConfig): { name: string; path: string }[] {
    const out: { name: string; path: string }[] = [
        { name: "proxy-data", path: "proxy" },
        { name: "proxy-config", path: "proxy" },
    ];
    for (const role of SERVICE_ROLES) {
        const s = c.services[role];
        if (!s.enabled) continue;
        for (const vol of roleVolumes(role)) out.push({ name: vol.name, path: `services.${role}` });
        s.extraVolumes.forEach((ev, i) => out.push({ name: ev.name, path: `services.${role}.extraVolumes[${i}].name` }));
    }
    return out;
}

function roleMountTargets(role: ServiceRole): string[] {
    return roleVolumes(role).map((vol) => vol.target);
}

/**
 * Whether `storage.backend: auto` reads this root as a ZFS dataset: no leading `/` (a path) and
 * no leading `.` (a project-relative path). storage.sh `resolve_backend` reads it the same way.
 */
export function isDatasetRoot(root: string): boolean {
    return !root.startsWith("/") && !root.startsWith(".");
}

function resolvePaths(c: StackConfig, ctx: ConfigContext): StackConfig {
    if (c.storage.backend === "zfs" || c.storage.root.startsWith("/")) return c;
    if (c.storage.backend === "auto" && isDatasetRoot(c.storage.root)) return c;
    return { ...c, storage: { ...c.storage, root: path.resolve(ctx.projectDir, c.storage.root) } };
}
