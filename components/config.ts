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

/** The Pulumi config namespace of every key: `mmagent:<key>` in `Pulumi.<stack>.yaml`. */
export const CONFIG_NAMESPACE = "mmagent";

/** Images used when a stack does not name its own. Tags are exact; prod stacks add digests. */
export const DEFAULT_IMAGES = {
    /** `proxy.image` with `proxy.engine` "caddy": Caddy. */
    proxy: "caddy:2.10.2-alpine",
    /** `proxy.image` with `proxy.engine` "haproxy": HAProxy, the 2.6 branch the tests run (Debian's 2.6.12). */
    proxyHaproxy: "haproxy:2.6.31-alpine",
    /** `services.inference.image`: Ollama. */
    inference: "ollama/ollama:0.12.6",
    /** `services.agent.image`: Open WebUI. */
    agent: "ghcr.io/open-webui/open-webui:v0.6.34",
    /** `services.cache.image`: Redis. */
    cache: "redis:7.4.6-alpine",
    /** `services.vectorDb.image`: PostgreSQL with pgvector. */
    vectorDb: "pgvector/pgvector:0.8.1-pg17",
    /** `host.gpuSmokeTestImage`: runs `nvidia-smi`. */
    gpuSmokeTest: "nvidia/cuda:12.6.3-base-ubuntu24.04",
} as const;

export const DEFAULT_TOOLKIT_VERSION = "1.18.0-1";
export const DEFAULT_IPV6_SUBNET = "fd6d:6d61:6765::/64";
/** Ports the proxy uses inside its container for the health endpoint and the admin API (Caddy). */
export const PROXY_HEALTH_PORT = 2020;
export const PROXY_ADMIN_PORT = 2019;
/** Port of HAProxy's "hold" listener on its container's loopback (components/haproxyConfig.ts). */
export const PROXY_HOLD_PORT = 2021;

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
        z.strictObject({
            /** This machine: the host scripts run locally and Docker is the local engine. */
            kind: z.literal("local"),
        }),
        z.strictObject({
            /** A host reached over SSH (needs the `sshPrivateKey` secret). */
            kind: z.literal("ssh"),
            /** DNS name or IP address of the host. */
            host: v.hostAddress,
            /** SSH port. @default 22 */
            port: v.port.default(22),
            /** Login user: root, or a deploy user with the sudoers line (README, "Remote hosts"). @default "root" */
            user: v.unixUser.default("root"),
            /** The host's public key, pinned: the connection fails if the host presents another. */
            hostKey: v.sshHostKey,
        }),
    ],
    { error: "set kind to \"local\" or \"ssh\"" },
);

const hostSchema = z.strictObject({
    /** How to reach the host. @default { kind: "local" } */
    connection: connectionSchema.default({ kind: "local" }),
    /** GPUs the host offers the containers: "none", "all", or indices / UUIDs. @default "none" */
    gpus: gpuSelection.default("none"),
    /** NVIDIA container toolkit version, for all four packages (held). @default "1.18.0-1" */
    toolkitVersion: v.debianVersion.default(DEFAULT_TOOLKIT_VERSION),
    /** Generate the CDI spec and enable CDI in Docker; containers then request GPUs by CDI name. @default false */
    cdi: z.boolean().default(false),
    /** Kernel parameters written to `/etc/sysctl.d/90-mmagent.conf`. @default { "fs.inotify.max_user_watches": "524288" } */
    sysctls: v.sysctls.default({ "fs.inotify.max_user_watches": "524288" }),
    /** Image the GPU smoke test runs `nvidia-smi` in. @default DEFAULT_IMAGES.gpuSmokeTest */
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
    /** Snapshot retention. @default { keep: 10 } */
    retention: z.strictObject({
        /** Snapshots kept per volume; only `mmagent-*` ones are counted or pruned. @default 10 */
        keep: z.number().int().min(1, "keep at least 1 snapshot").max(1000, "keep at most 1000 snapshots").default(10),
    }).default({ keep: 10 }),
    /** Quota in GiB per volume name (ignored by the dir backend; not for NFS volumes). @default {} */
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
    /** The Docker network the proxy and the services share. @default "reverse_proxy" */
    name: v.resourceName.or(z.literal("reverse_proxy")).default("reverse_proxy"),
    /** The network's IPv6 subnet, declared with its gateway. @default "fd6d:6d61:6765::/64" */
    ipv6Subnet: v.ipv6Subnet.default(DEFAULT_IPV6_SUBNET),
    /**
     * The network's IPv4 subnet, declared with its gateway.
     * @default none (a /24 in 172.16.128.0/17 derived from the network name, networkAddressing.ts `derivedIpv4Subnet`)
     */
    ipv4Subnet: v.ipv4Subnet.optional(),
    /**
     * The engine's own address pools, which the subnets must stay out of. Docker's built-in
     * local pools unless daemon.json sets `default-address-pools`: then list those here.
     * @default Docker's built-in pools (validators.ts `DOCKER_DEFAULT_ADDRESS_POOLS`)
     */
    dockerAddressPools: z.array(v.anyCidr).default([...v.DOCKER_DEFAULT_ADDRESS_POOLS]),
});

const routeSchema = z.strictObject({
    /** Host name the route answers (a `*.` wildcard allowed). */
    host: v.dnsName,
    /** A service role (`agent`, `inference`, …) of this stack. */
    service: z.string(),
    /** The service's port on the network. */
    port: v.port,
    /** Path prefix such as "/api/*". @default none (every path of the host) */
    path: z.string().regex(/^\/[A-Za-z0-9._~/-]*\*?$/, "use a path prefix such as \"/api/*\"").optional(),
});

const proxySchema = z.strictObject({
    /**
     * The proxy: "haproxy" (tls "internal" or "off"; a route change is a master-worker reload that
     * drops no request, and it proxies about twice as fast: README "Proxy engines"), or "caddy"
     * (any tls, ACME included; a route change reloads Caddy, which drops the odd request arriving
     * at that instant). @default "caddy" when `tls` is "acme", else "haproxy"
     */
    engine: z.enum(["caddy", "haproxy"], { error: "set engine to \"caddy\" or \"haproxy\"" }).optional(),
    /** The proxy's image. @default DEFAULT_IMAGES.proxy for engine "caddy", DEFAULT_IMAGES.proxyHaproxy for "haproxy" */
    image: v.imageReference.optional(),
    /** Host address the HTTP and HTTPS ports are published on. @default "127.0.0.1" */
    bindAddress: v.ipAddress.default("127.0.0.1"),
    /** HTTP port, published and listened on with the same number. @default 80 */
    httpPort: v.port.default(80),
    /** HTTPS port, published and listened on with the same number. @default 443 */
    httpsPort: v.port.default(443),
    /**
     * Certificates: "acme" (needs `acmeEmail` and public names; engine "caddy"), "internal" (a CA of
     * the stack's own: the proxy's, or with engine "caddy" Caddy's) or "off". @default "internal"
     */
    tls: z.enum(["acme", "internal", "off"], { error: "set tls to \"acme\", \"internal\" or \"off\"" }).default("internal"),
    /** E-mail of the ACME account; required when `tls` is "acme". @default none (no ACME account) */
    acmeEmail: z.email("use an e-mail address for the ACME account").optional(),
    /**
     * Caddy's admin API: "loopback" (the container's own 127.0.0.1, reached with `docker exec`; route
     * changes load in place), or "off" (route changes restart the proxy). Never published.
     * @default "loopback"
     */
    adminApi: z.enum(["off", "loopback"], { error: "set adminApi to \"off\" or \"loopback\": the admin API is never published" }).default("loopback"),
    /** Extra routes, besides each service's `host`. @default [] */
    routes: z.array(routeSchema).max(v.LIMITS.routes, `give at most ${v.LIMITS.routes} routes`).default([]),
}).transform((p): Omit<typeof p, "engine"> & ResolvedProxyEngine => ({ ...p, engine: p.engine ?? defaultProxyEngine(p.tls) }));

/** The proxy config as parsed: `engine` resolved. */
export interface ResolvedProxyEngine {
    /** `proxy.engine`, else {@link defaultProxyEngine} of `proxy.tls`. */
    engine: "caddy" | "haproxy";
}

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
    /** Volume name, unique in the stack (also the dataset/subvolume/directory name). */
    name: v.resourceName,
    /** What the volume holds: decides its filesystem tuning. */
    profile: z.enum(VOLUME_PROFILES, { error: `use one of ${VOLUME_PROFILES.join(", ")}` }),
    /** Mount point in the container. */
    target: v.containerPath,
    /** Input data: mounted read-only and not snapshotted or restored with its service. @default false */
    readOnly: z.boolean().default(false),
    /** Mount this NFS export instead of a volume under storage.root; needs readOnly: true. @default none (a volume under storage.root) */
    nfs: nfsSourceSchema.optional(),
});

function serviceSchema<R extends z.ZodRawShape>(defaults: { enabled: boolean; image: string }, roleShape: R) {
    return z.strictObject({
        /** Whether the service runs. @default true (vectorDb: false) */
        enabled: z.boolean().default(defaults.enabled),
        /** Image, with a tag or digest. @default the role's image in DEFAULT_IMAGES */
        image: v.imageReference.default(defaults.image),
        /** CPUs the container may run on, e.g. "0-3,5". @default unpinned */
        cpuSet: v.cpuSet.optional(),
        /** Memory limit in MiB (swap up to the same amount again). @default none (no limit) */
        memoryMiB: z.number().int().min(16, "give at least 16 MiB").optional(),
        /** Size of /dev/shm in MiB. @default the role's (vectorDb: 256), else Docker's (64) */
        shmSizeMiB: z.number().int().min(1).optional(),
        /** Environment variables; they win over the role's own (the wiring between services). @default {} */
        env: z.record(v.envName, v.envValue).default({}),
        /** Restore this service's writable volumes from a snapshot on the next `pulumi up`. @default none (no restore) */
        restoreFrom: v.snapshotName.optional(),
        /** Publish this service through the proxy under this host name. @default none (not published) */
        host: v.dnsName.optional(),
        /** Volumes besides the role's own. @default [] */
        extraVolumes: z.array(extraVolumeSchema).max(v.LIMITS.extraVolumes, `give a service at most ${v.LIMITS.extraVolumes} extra volumes`).default([]),
        /** GPUs of `host.gpus` this service gets (GPU-capable roles: inference, agent). @default inference: all of `host.gpus`; the others: none */
        gpus: gpuSelection.optional(),
        /** Replaces the image's command (when another image fills the role). @default the role's (cache: redis-server with its config), else the image's own */
        command: z.array(z.string().max(1024)).min(1).optional(),
        /** Replaces the role's healthcheck, Docker `tests` form: ["CMD", "curl", "-f", "http://127.0.0.1:8080/"]. @default the role's (roles.ts `ROLES`) */
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
    /** Ollama, with the host's GPUs by default. */
    inference: serviceSchema({ enabled: true, image: DEFAULT_IMAGES.inference }, {}).prefault({}),
    /** Open WebUI: database, uploads, read-only input, writable output, logs. */
    agent: serviceSchema({ enabled: true, image: DEFAULT_IMAGES.agent }, {}).prefault({}),
    /** Redis with a password, LRU eviction within `maxMemoryMiB`. */
    cache: serviceSchema(
        { enabled: true, image: DEFAULT_IMAGES.cache },
        {
            /** Redis `maxmemory`, with `allkeys-lru`. @default 256 */
            maxMemoryMiB: z.number().int().min(8, "give the cache at least 8 MiB").default(256),
        },
    ).prefault({}),
    /** PostgreSQL with pgvector; off by default. */
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
    /** Must be true for the proxy to publish on `0.0.0.0` or `::`. @default false */
    allowPublicBind: z.boolean().default(false),
    /** The host: connection, GPUs, NVIDIA toolkit, sysctls. */
    host: hostSchema.prefault({}),
    /** Where the volumes live (`root` is required). */
    storage: storageSchema,
    /** The proxy network. */
    network: networkSchema.prefault({}),
    /** The reverse proxy (Caddy). */
    proxy: proxySchema.prefault({}),
    /** The agent's services, by role. */
    services: servicesSchema.prefault({}),
});

/** A validated stack config with every default filled in: what {@link parseStackConfig} returns. */
export type StackConfig = z.output<typeof stackConfigSchema>;
export type HostConfig = StackConfig["host"];
export type StorageConfig = StackConfig["storage"];
export type NetworkConfig = StackConfig["network"];
export type ProxyConfig = StackConfig["proxy"];
/**
 * The engine a stack gets when `proxy.engine` is not set: HAProxy, whose route changes drop no
 * request, unless the certificates come from ACME, which only Caddy obtains here.
 */
export function defaultProxyEngine(tls: "acme" | "internal" | "off"): "caddy" | "haproxy" {
    return tls === "acme" ? "caddy" : "haproxy";
}

/** The engine an image is named for (its repository's last path segment says "caddy" or "haproxy"), if it says. */
function proxyImageEngine(image: string | undefined): "caddy" | "haproxy" | undefined {
    const name = (image ?? "").replace(/@.*$/, "").replace(/:[^/]*$/, "").split("/").pop() ?? "";
    if (/haproxy/i.test(name)) return "haproxy";
    if (/caddy/i.test(name)) return "caddy";
    return undefined;
}

/** The default image of a proxy engine. */
export function defaultProxyImage(engine: "caddy" | "haproxy"): string {
    return engine === "haproxy" ? DEFAULT_IMAGES.proxyHaproxy : DEFAULT_IMAGES.proxy;
}

/** The proxy's image: `proxy.image`, else the default of its engine. */
export function proxyImage(c: Pick<StackConfig, "proxy">): string {
    return c.proxy.image ?? defaultProxyImage(c.proxy.engine);
}

/** The validated `services` section: one entry per role. */
export type ServicesConfig = StackConfig["services"];
/** A service role: `inference`, `agent`, `cache` or `vectorDb`. */
export type ServiceRole = keyof ServicesConfig;
export type ServiceConfig = ServicesConfig[ServiceRole];
/** The service roles, in config order. */
export const SERVICE_ROLES: readonly ServiceRole[] = ["inference", "agent", "cache", "vectorDb"];

/** The config as read from `Pulumi.<stack>.yaml`, before validation. */
export interface RawStackConfig {
    [key: string]: unknown;
}

/** One problem found in the config: the key it concerns and what to do about it. */
export interface ConfigProblem {
    /** The key below `mmagent:`, or the environment variable's name when `environment` is set. */
    propertyPath: string;
    /** What is wrong and how to fix it. */
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

/** The error {@link parseStackConfig} throws: every problem, each with its `mmagent:` key (or `$VARIABLE`) and reason. */
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
    const imageEngine = proxyImageEngine(p.image);
    if (imageEngine && imageEngine !== p.engine) {
        add(
            "proxy.image",
            `${p.image} is a ${imageEngine === "caddy" ? "Caddy" : "HAProxy"} image, but the proxy engine is "${p.engine}" (the default is "haproxy" unless tls is "acme"): ` +
                `set proxy.engine to "${imageEngine}" to keep it, or name a ${p.engine === "caddy" ? "Caddy" : "HAProxy"} image`,
        );
    }
    if (p.engine === "haproxy" && p.tls === "acme") {
        add("proxy.engine", `engine "haproxy" does not obtain ACME certificates: use engine "caddy" for tls "acme" (the default when proxy.engine is not set), or set proxy.tls to "internal"`);
    }
    if (p.engine === "haproxy" && [p.httpPort, p.httpsPort].includes(PROXY_HOLD_PORT)) {
        add("proxy.httpPort", `port ${PROXY_HOLD_PORT} is used inside the HAProxy container for its hold listener: choose another`);
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
