/**
 * The roles of the agent stack and what each needs by default: port, volumes with their
 * profiles and mount targets, healthcheck, Linux capabilities. Pure data; the
 * MultimodalAgentStack turns it into containers.
 */
import type { ServiceRole } from "./config";
import { VolumeProfile } from "./types";

export interface RoleVolume {
    /** Volume name, unique in the stack (also the dataset/subvolume name). */
    name: string;
    profile: VolumeProfile;
    /** Mount point in the container. */
    target: string;
    /** Input data: read-only in the container, not snapshotted with the service. */
    readOnly: boolean;
}

export interface RoleDefinition {
    /** DNS label of the role on the network, and the suffix of its container name. */
    label: string;
    /** The port the role serves on the network. */
    port: number;
    volumes: RoleVolume[];
    /** Healthcheck command (Docker `tests`). */
    healthcheck: string[];
    /** Capabilities the image needs after `drop ALL` (e.g. entrypoints that chown then drop to a user). */
    capAdd: string[];
    /** Whether the role can use GPUs. */
    gpuCapable: boolean;
    /** Default /dev/shm size. */
    shmSizeMiB?: number;
    /** Default command, if the image's own is not right. */
    command?: string[];
    /**
     * Seconds the service gets between SIGTERM and SIGKILL when it is replaced, deleted or stopped
     * for a snapshot: long enough for its data service to shut down cleanly.
     */
    stopGraceSeconds: number;
    /** Run Docker's init as PID 1: none of the role's images brings one that forwards SIGTERM. */
    init: boolean;
}

export const ROLES: Record<ServiceRole, RoleDefinition> = {
    inference: {
        label: "inference",
        port: 11434,
        volumes: [{ name: "inference-models", profile: "models", target: "/root/.ollama", readOnly: false }],
        healthcheck: ["CMD", "ollama", "list"],
        capAdd: [],
        gpuCapable: true,
        // Nothing to flush: models are read-only files; unloading is quick.
        stopGraceSeconds: 15,
        init: true,
    },
    agent: {
        label: "agent",
        port: 8080,
        volumes: [
            { name: "agent-db", profile: "db", target: "/app/backend/data", readOnly: false },
            { name: "agent-uploads", profile: "media", target: "/app/backend/data/uploads", readOnly: false },
            { name: "agent-input", profile: "media", target: "/input", readOnly: true },
            { name: "agent-output", profile: "text", target: "/output", readOnly: false },
            { name: "agent-logs", profile: "logs", target: "/app/logs", readOnly: false },
        ],
        healthcheck: ["CMD", "curl", "-fsS", "http://127.0.0.1:8080/health"],
        capAdd: [],
        gpuCapable: true,
        // Uvicorn finishes in-flight requests; SQLite commits.
        stopGraceSeconds: 20,
        init: true,
    },
    cache: {
        label: "cache",
        port: 6379,
        volumes: [{ name: "cache-data", profile: "cache", target: "/data", readOnly: false }],
        // The password is read from the mounted config, so it never appears in `docker inspect`.
        healthcheck: ["CMD-SHELL", "redis-cli --no-auth-warning -a \"$(sed -n 's/^requirepass //p' /etc/mmagent/redis.conf)\" ping | grep -q PONG"],
        // The official entrypoint chowns /data, then drops to the redis user.
        capAdd: ["CHOWN", "SETGID", "SETUID"],
        gpuCapable: false,
        command: ["redis-server", "/etc/mmagent/redis.conf"],
        // On SIGTERM Redis writes its RDB snapshot (`save` is on) before exiting.
        stopGraceSeconds: 30,
        init: true,
    },
    vectorDb: {
        label: "vector-db",
        port: 5432,
        volumes: [{ name: "vector-db-data", profile: "db", target: "/var/lib/postgresql/data", readOnly: false }],
        healthcheck: ["CMD", "pg_isready", "-U", "postgres"],
        capAdd: ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"],
        gpuCapable: false,
        shmSizeMiB: 256,
        // PostgreSQL's shutdown checkpoint can take a while on a busy database.
        stopGraceSeconds: 60,
        init: true,
    },
};

export function roleVolumes(role: ServiceRole): RoleVolume[] {
    return ROLES[role].volumes;
}

/** The proxy's grace: Caddy finishes in-flight requests on SIGTERM. */
export const PROXY_STOP_GRACE_SECONDS = 10;

/** Container name of a role in a stack: `<prefix>-<label>`. */
export function containerName(prefix: string, role: ServiceRole): string {
    return `${prefix}-${ROLES[role].label}`;
}

/** Redis config for the cache role: LRU eviction within maxmemory, a password, snapshots to /data. */
export function redisConfig(maxMemoryMiB: number, password: string): string {
    return [
        "# Managed by mmagent (pulumi)",
        "bind 0.0.0.0 -::",
        "port 6379",
        "dir /data",
        `maxmemory ${maxMemoryMiB}mb`,
        "maxmemory-policy allkeys-lru",
        "save 900 1",
        "appendonly no",
        `requirepass ${password}`,
        "",
    ].join("\n");
}
