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
    /** `all` or `device=0,1`. @default no GPU */
    gpus?: string;
    uploads?: { file: string; content: pulumi.Input<string> }[];
    /** Seconds Pulumi waits for the container to become healthy. @default 180 */
    waitTimeoutSeconds?: number;
    labels?: Record<string, string>;
}

/** Docker `Container` args for a spec; exported so tests can check the exact inputs. */
export function containerArgs(spec: ContainerSpec): docker.ContainerArgs {
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
        capabilities: { drops: ["ALL"], adds: spec.capAdd && spec.capAdd.length > 0 ? [...spec.capAdd].sort() : undefined },
        securityOpts: ["no-new-privileges:true"],
        privileged: false,
        cpuSet: spec.cpuSet,
        memory: spec.memoryMiB,
        shmSize: spec.shmSizeMiB,
        gpus: spec.gpus,
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
    return new docker.Container(name, containerArgs(spec), { ...opts, deleteBeforeReplace: true });
}
