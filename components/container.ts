/**
 * One place for how this project runs a container: hardened by default (all capabilities
 * dropped, no-new-privileges, never privileged, no Docker socket), on the stack's network with
 * its name as alias, healthchecked, restarted unless stopped, logs rotated, and replaced
 * delete-before-replace because its name is fixed.
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";

export interface ContainerMount {
    /** Docker volume name. */
    volumeName: pulumi.Input<string>;
    target: string;
    readOnly: boolean;
}

export interface ContainerSpec {
    /** Fixed container name: its DNS name on the network. */
    containerName: string;
    image: pulumi.Input<string>;
    /** Network to join; the container name and `aliases` resolve there. */
    networkName: pulumi.Input<string>;
    /** Extra DNS names on the network. @default [] */
    aliases?: string[];
    command?: string[];
    /** `KEY=value` entries; a secret entry keeps the whole list secret. @default [] */
    envs?: pulumi.Input<pulumi.Input<string>[]>;
    mounts?: ContainerMount[];
    ports?: { internal: number; external: number; ip: string; protocol?: "tcp" | "udp" }[];
    /** Docker healthcheck `tests`. */
    healthcheck: string[];
    /** Capabilities to add back after dropping ALL. @default [] */
    capAdd?: string[];
    /** CPUs, e.g. "0-3,5". @default unpinned */
    cpuSet?: string;
    memoryMiB?: number;
    shmSizeMiB?: number;
    /** GPUs as structured device requests (see gpus.ts `gpuDeviceRequests`). @default no GPU */
    gpus?: docker.types.input.ContainerDeviceRequest[];
    /**
     * Seconds the service gets to shut down on SIGTERM before it is killed, whenever its
     * container is replaced, deleted or stopped for a snapshot. @default 10
     */
    stopGraceSeconds?: number;
    /**
     * Run Docker's init (tini) as PID 1, which forwards signals and reaps zombies; for images
     * whose own PID 1 does neither. @default true
     */
    init?: boolean;
    uploads?: { file: string; content: pulumi.Input<string> }[];
    /** Seconds Pulumi waits for the container to become healthy. @default 180 */
    waitTimeoutSeconds?: number;
    labels?: Record<string, string>;
    /** Namespaced kernel parameters of the container (`net.*` only for a bridge network). @default none */
    sysctls?: Record<string, string>;
}

/** The grace a container gets when its spec names none (Docker's own default stop timeout). */
export const DEFAULT_STOP_GRACE_SECONDS = 10;

/** `CHOWN`, `cap_chown` → `CAP_CHOWN`, sorted and unique: the form the daemon stores and returns. */
export function canonicalCapabilities(caps: readonly string[]): string[] {
    return [...new Set(caps.map((c) => `CAP_${c.toUpperCase().replace(/^CAP_/, "")}`))].sort();
}

/** Docker `Container` args for a spec; exported so tests can check the exact inputs. */
export function containerArgs(spec: ContainerSpec): docker.ContainerArgs {
    const grace = spec.stopGraceSeconds ?? DEFAULT_STOP_GRACE_SECONDS;
    return {
        name: spec.containerName,
        image: spec.image,
        command: spec.command,
        envs: spec.envs,
        restart: "unless-stopped",
        networksAdvanced: [{ name: spec.networkName, aliases: [spec.containerName, ...(spec.aliases ?? [])] }],
        mounts: (spec.mounts ?? []).map((m) => ({ type: "volume", source: m.volumeName, target: m.target, readOnly: m.readOnly })),
        ports: spec.ports?.map((p) => ({ internal: p.internal, external: p.external, ip: p.ip, protocol: p.protocol ?? "tcp" })),
        healthcheck: { tests: spec.healthcheck, interval: "10s", timeout: "5s", startPeriod: "30s", retries: 3 },
        // Canonical `CAP_` names: the moby client rewrites `CHOWN` to `CAP_CHOWN` before sending and the
        // provider stores what the daemon returns in a replace-on-change set (docs/provider-behaviour.md).
        capabilities: { drops: ["ALL"], adds: spec.capAdd && spec.capAdd.length > 0 ? canonicalCapabilities(spec.capAdd) : undefined },
        securityOpts: ["no-new-privileges:true"],
        privileged: false,
        cpuSet: spec.cpuSet,
        memory: spec.memoryMiB,
        // What the daemon fills in for a memory limit (swap up to the same amount again); the
        // provider reads it back, so leaving it out is an in-place diff on every preview.
        memorySwap: spec.memoryMiB === undefined ? undefined : 2 * spec.memoryMiB,
        shmSize: spec.shmSizeMiB,
        sysctls: spec.sysctls,
        deviceRequests: spec.gpus,
        init: spec.init ?? true,
        // The provider stops with timeout 0 (SIGKILL) when this is unset; the container's own
        // stop timeout makes a plain `docker stop` (the snapshot step's too) give the same grace.
        destroyGraceSeconds: grace,
        stopTimeout: grace,
        uploads: spec.uploads,
        logDriver: "json-file",
        logOpts: { "max-size": "10m", "max-file": "3" },
        labels: Object.entries({ "mmagent.container": spec.containerName, ...(spec.labels ?? {}) }).map(([label, value]) => ({ label, value })),
        wait: true,
        waitTimeout: spec.waitTimeoutSeconds ?? 180,
    };
}

export function hardenedContainer(name: string, spec: ContainerSpec, opts: pulumi.CustomResourceOptions): docker.Container {
    // A fixed name cannot exist twice: delete the old container before creating its replacement.
    // The provider's Update ignores `init` and `healthcheck` (a change would only reach the state,
    // never the container): replace instead (docs/provider-behaviour.md).
    return new docker.Container(name, containerArgs(spec), { ...opts, deleteBeforeReplace: true, replaceOnChanges: ["init", "healthcheck"] });
}
