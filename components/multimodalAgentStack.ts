/**
 * MultimodalAgentStack: the agent's services as containers on the proxy network, each on its
 * own storage volumes, gated on its pre-change snapshot, with generated secrets.
 *
 * Roles (see roles.ts): inference (Ollama, GPU when the host has one), agent (Open WebUI:
 * database, uploads, read-only input, writable text output, logs), cache (Redis, LRU within
 * maxmemory, password), and an optional vector database (pgvector).
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { SERVICE_ROLES, ServiceRole, ServicesConfig } from "./config";
import { ContainerMount, hardenedContainer } from "./container";
import { containerName, redisConfig, ROLES } from "./roles";
import { TOKENS } from "./tokens";
import { gpuDeviceRequests, serviceGpus } from "./gpus";
import { GpuSelection } from "./types";

/** The storage a service needs: a Docker volume per name, and what to wait for. */
export interface ServiceStorageLookup {
    /** The Docker volume name of a volume (a role's or an extra one). */
    dockerVolumeName(volume: string): pulumi.Input<string>;
    /** What a container must wait for: its pre-change snapshot and pending restore. */
    gatesFor(container: string): pulumi.Resource[];
}

/** Inputs of {@link MultimodalAgentStack}. */
export interface MultimodalAgentStackArgs {
    /** Prefix of container names (`<prefix>-agent`, …). */
    namePrefix: string;
    /** The services section of the stack config (validated, defaults applied). */
    services: ServicesConfig;
    /** Network the containers join (the ReverseProxyNetwork's). */
    networkName: pulumi.Input<string>;
    /** Volumes and snapshot gates (a StorageLayout). */
    storage: ServiceStorageLookup;
    /** GPUs the host offers; "none" means no container gets a GPU. @default "none" */
    hostGpus?: GpuSelection;
    /** Request GPUs by CDI device name (the host has CDI on) instead of through the NVIDIA runtime. @default false */
    cdi?: boolean;
    /** Resources every container waits for (e.g. the host preparation). @default [] */
    dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/** What {@link buildMultimodalAgentStack} created. */
export interface MultimodalAgentStackParts {
    /** The container per enabled role. */
    containers: Partial<Record<ServiceRole, docker.Container>>;
    /** Generated secrets: the cache's and the vector DB's passwords, the agent's session key (each only when its service is on). */
    passwords: {
        /** The cache's (Redis) password. */
        cache?: random.RandomPassword;
        /** The vector database's (PostgreSQL with pgvector) password. */
        vectorDb?: random.RandomPassword;
        /** The agent UI's session signing key. */
        agentSecretKey?: random.RandomPassword;
    };
}

function password(name: string, parent: pulumi.Resource): random.RandomPassword {
    // Letters and digits only: these end up in URLs and a Redis config line.
    return new random.RandomPassword(name, { length: 32, special: false }, { parent, additionalSecretOutputs: ["result"] });
}

/** Creates the resources of a {@link MultimodalAgentStack} under `parent`; the class is this plus its outputs. */
export function buildMultimodalAgentStack(name: string, args: MultimodalAgentStackArgs, parent: pulumi.Resource): MultimodalAgentStackParts {
    const s = args.services;
    const on = (role: ServiceRole) => s[role].enabled;
    const cname = (role: ServiceRole) => containerName(args.namePrefix, role);
    const passwords: MultimodalAgentStackParts["passwords"] = {
        cache: on("cache") ? password(`${name}-cache-password`, parent) : undefined,
        vectorDb: on("vectorDb") ? password(`${name}-vector-db-password`, parent) : undefined,
        agentSecretKey: on("agent") ? password(`${name}-agent-secret-key`, parent) : undefined,
    };

    // Role environment: what wires the services to each other. User env comes last and wins.
    const roleEnv: Record<ServiceRole, Record<string, pulumi.Input<string>>> = {
        inference: { OLLAMA_HOST: `0.0.0.0:${ROLES.inference.port}` },
        agent: {
            DATA_DIR: "/app/backend/data",
            MMAGENT_INPUT_DIR: "/input",
            MMAGENT_OUTPUT_DIR: "/output",
            ...(passwords.agentSecretKey ? { WEBUI_SECRET_KEY: passwords.agentSecretKey.result } : {}),
            ...(on("inference") ? { OLLAMA_BASE_URL: `http://${cname("inference")}:${ROLES.inference.port}` } : {}),
            ...(passwords.cache
                ? {
                      REDIS_URL: pulumi.interpolate`redis://:${passwords.cache.result}@${cname("cache")}:${ROLES.cache.port}/0`,
                      ENABLE_WEBSOCKET_SUPPORT: "true",
                      WEBSOCKET_MANAGER: "redis",
                      WEBSOCKET_REDIS_URL: pulumi.interpolate`redis://:${passwords.cache.result}@${cname("cache")}:${ROLES.cache.port}/1`,
                  }
                : {}),
            ...(passwords.vectorDb
                ? {
                      VECTOR_DB: "pgvector",
                      PGVECTOR_DB_URL: pulumi.interpolate`postgresql://postgres:${passwords.vectorDb.result}@${cname("vectorDb")}:${ROLES.vectorDb.port}/postgres`,
                  }
                : {}),
        },
        cache: {},
        vectorDb: {
            PGDATA: "/var/lib/postgresql/data/pgdata",
            ...(passwords.vectorDb ? { POSTGRES_PASSWORD: passwords.vectorDb.result } : {}),
        },
    };

    const containers: MultimodalAgentStackParts["containers"] = {};
    // Dependencies first, so the agent starts after its cache and vector DB are healthy.
    const order: ServiceRole[] = ["cache", "vectorDb", "inference", "agent"];
    for (const role of order.filter(on)) {
        const cfg = s[role];
        const def = ROLES[role];
        const container = cname(role);
        const mounts: ContainerMount[] = [
            ...def.volumes.map((v) => ({ volumeName: args.storage.dockerVolumeName(v.name), target: v.target, readOnly: v.readOnly })),
            ...cfg.extraVolumes.map((v) => ({ volumeName: args.storage.dockerVolumeName(v.name), target: v.target, readOnly: v.readOnly })),
        ];
        const env = { ...roleEnv[role], ...cfg.env };
        const envs = Object.entries(env)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([k, val]) => pulumi.interpolate`${k}=${val}`);
        const dependsOnPeers =
            role === "agent" ? (["cache", "vectorDb", "inference"] as ServiceRole[]).flatMap((r) => (containers[r] ? [containers[r]!] : [])) : [];
        containers[role] = hardenedContainer(
            `${name}-${def.label}`,
            {
                containerName: container,
                image: cfg.image,
                networkName: args.networkName,
                aliases: [def.label],
                command: cfg.command ?? def.command,
                envs,
                mounts,
                healthcheck: cfg.healthcheck ?? def.healthcheck,
                capAdd: cfg.capAdd ?? def.capAdd,
                cpuSet: cfg.cpuSet,
                memoryMiB: cfg.memoryMiB,
                shmSizeMiB: cfg.shmSizeMiB ?? def.shmSizeMiB,
                gpus: def.gpuCapable ? gpuDeviceRequests(serviceGpus(role, cfg.gpus, args.hostGpus ?? "none"), args.cdi ?? false) : undefined,
                stopGraceSeconds: def.stopGraceSeconds,
                init: def.init,
                uploads:
                    role === "cache" && passwords.cache
                        ? [
                              {
                                  file: "/etc/mmagent/redis.conf",
                                  content: pulumi.secret(passwords.cache.result.apply((pw) => redisConfig(s.cache.maxMemoryMiB, pw))),
                              },
                          ]
                        : undefined,
                labels: { "mmagent.role": role },
            },
            { parent, dependsOn: [...args.storage.gatesFor(container), ...dependsOnPeers, ...((args.dependsOn ?? []) as pulumi.Resource[])] },
        );
    }
    return { containers, passwords };
}

/** The component; see the module comment and {@link MultimodalAgentStackArgs}. */
export class MultimodalAgentStack extends pulumi.ComponentResource {
    /** The container per enabled role. */
    public readonly containers: Partial<Record<ServiceRole, docker.Container>>;
    /** The cache password (secret), for clients outside the stack. */
    public readonly cachePassword?: pulumi.Output<string>;
    /** Container name per enabled role. */
    public readonly containerNames: Partial<Record<ServiceRole, string>>;

    constructor(name: string, args: MultimodalAgentStackArgs, opts?: pulumi.ComponentResourceOptions) {
        super(TOKENS.multimodalAgentStack, name, {}, opts);
        const parts = buildMultimodalAgentStack(name, args, this);
        this.containers = parts.containers;
        this.cachePassword = parts.passwords.cache?.result;
        this.containerNames = Object.fromEntries(SERVICE_ROLES.filter((r) => args.services[r].enabled).map((r) => [r, containerName(args.namePrefix, r)]));
        this.registerOutputs({ containerNames: this.containerNames });
    }
}
