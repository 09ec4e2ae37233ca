/**
 * Translates the inputs of @pulumi/docker resources, as the program declares them, into Docker
 * Engine API request bodies (the ones dockerode sends). Strict on purpose: an input this file
 * does not translate is an error naming it, never silently dropped, so a new container option
 * in the components cannot pass the real-engine harness untested.
 */
import type Docker from "dockerode";
import { reveal } from "./secrets";

function onlyKnownKeys(what: string, value: Record<string, unknown>, known: readonly string[]): void {
    const unknown = Object.keys(value).filter((k) => !known.includes(k));
    if (unknown.length > 0) {
        throw new Error(`real-engine harness: ${what} input(s) ${unknown.map((k) => `"${k}"`).join(", ")} not translated; teach test/support/dockerTranslate.ts what they mean`);
    }
}

const NS_PER_UNIT: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go-style duration ("10s", "1m30s") → nanoseconds, as the Docker API wants healthcheck times. */
export function durationNs(text: string): number {
    const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g)];
    if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) throw new Error(`real-engine harness: cannot read duration "${text}"`);
    return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * NS_PER_UNIT[p[2]], 0));
}

const labelsObject = (labels: { label: string; value: string }[] | undefined): Record<string, string> =>
    Object.fromEntries((labels ?? []).map((l) => [l.label, l.value]));

const MIB = 1024 * 1024;

export const CONTAINER_INPUTS = [
    "name", "image", "command", "envs", "restart", "networksAdvanced", "mounts", "ports", "healthcheck", "capabilities",
    "securityOpts", "privileged", "cpuSet", "memory", "shmSize", "gpus", "uploads", "logDriver", "logOpts", "labels", "wait", "waitTimeout",
] as const;

export interface ContainerPlan {
    create: Docker.ContainerCreateOptions;
    /** Files to put into the container before it starts (the provider's `uploads`). */
    uploads: { file: string; content: string }[];
    /** Wait for the healthcheck to pass, within this many seconds; undefined: do not wait. */
    waitSeconds?: number;
}

/** docker.Container inputs → a create request, the uploads, and the wait. */
export function containerPlan(rawInputs: Record<string, unknown>): ContainerPlan {
    const i = reveal<Record<string, any>>(rawInputs);
    onlyKnownKeys("Container", i, CONTAINER_INPUTS);
    if (typeof i.name !== "string" || typeof i.image !== "string") throw new Error("real-engine harness: a Container needs a name and an image");

    const networks = (i.networksAdvanced ?? []) as Record<string, any>[];
    networks.forEach((n) => onlyKnownKeys("Container.networksAdvanced[]", n, ["name", "aliases"]));
    if (networks.length > 1) throw new Error("real-engine harness: one network per container at create; connecting more is not translated");

    const mounts = (i.mounts ?? []) as Record<string, any>[];
    mounts.forEach((m) => {
        onlyKnownKeys("Container.mounts[]", m, ["type", "source", "target", "readOnly"]);
        if (m.type !== "volume") throw new Error(`real-engine harness: mount type "${m.type}" not translated`);
    });

    const ports = (i.ports ?? []) as Record<string, any>[];
    ports.forEach((p) => onlyKnownKeys("Container.ports[]", p, ["internal", "external", "ip", "protocol"]));
    const portKey = (p: Record<string, any>) => `${p.internal}/${p.protocol ?? "tcp"}`;

    const hc = i.healthcheck as Record<string, any> | undefined;
    if (hc) onlyKnownKeys("Container.healthcheck", hc, ["tests", "interval", "timeout", "startPeriod", "retries"]);
    const caps = (i.capabilities ?? {}) as Record<string, any>;
    onlyKnownKeys("Container.capabilities", caps, ["drops", "adds"]);
    const uploads = (i.uploads ?? []) as Record<string, any>[];
    uploads.forEach((u) => onlyKnownKeys("Container.uploads[]", u, ["file", "content"]));
    if (i.restart !== undefined && !["no", "on-failure", "always", "unless-stopped"].includes(i.restart)) {
        throw new Error(`real-engine harness: restart policy "${i.restart}" not translated`);
    }

    const create: Docker.ContainerCreateOptions = {
        name: i.name,
        Image: i.image,
        Cmd: i.command,
        Env: i.envs,
        Labels: labelsObject(i.labels),
        ExposedPorts: ports.length > 0 ? Object.fromEntries(ports.map((p) => [portKey(p), {}])) : undefined,
        Healthcheck: hc
            ? {
                  Test: hc.tests,
                  Interval: hc.interval ? durationNs(hc.interval) : undefined,
                  Timeout: hc.timeout ? durationNs(hc.timeout) : undefined,
                  StartPeriod: hc.startPeriod ? durationNs(hc.startPeriod) : undefined,
                  Retries: hc.retries,
              }
            : undefined,
        HostConfig: {
            RestartPolicy: i.restart ? { Name: i.restart } : undefined,
            Mounts: mounts.map((m) => ({ Type: "volume", Source: m.source, Target: m.target, ReadOnly: m.readOnly ?? false })),
            PortBindings:
                ports.length > 0 ? Object.fromEntries(ports.map((p) => [portKey(p), [{ HostIp: p.ip ?? "", HostPort: String(p.external ?? "") }]])) : undefined,
            CapDrop: caps.drops,
            CapAdd: caps.adds,
            SecurityOpt: i.securityOpts,
            Privileged: i.privileged ?? false,
            CpusetCpus: i.cpuSet,
            // The provider's memory and shmSize are in MiB.
            Memory: i.memory !== undefined ? i.memory * MIB : undefined,
            ShmSize: i.shmSize !== undefined ? i.shmSize * MIB : undefined,
            DeviceRequests: i.gpus ? [gpuDeviceRequest(i.gpus)] : undefined,
            LogConfig: i.logDriver ? { Type: i.logDriver, Config: i.logOpts ?? {} } : undefined,
            NetworkMode: networks[0]?.name,
        },
        NetworkingConfig:
            networks.length > 0 ? { EndpointsConfig: { [networks[0].name]: { Aliases: networks[0].aliases ?? [] } } } : undefined,
    };
    return {
        create,
        uploads: uploads.map((u) => ({ file: u.file, content: u.content })),
        waitSeconds: i.wait ? (i.waitTimeout ?? 60) : undefined,
    };
}

/** `gpus` as the docker CLI reads it: "all" or "device=0,1". */
function gpuDeviceRequest(gpus: string): Docker.DeviceRequest {
    const base = { Driver: "nvidia", Capabilities: [["gpu"]] };
    if (gpus === "all") return { ...base, Count: -1 };
    const m = /^device=([\w,-]+)$/.exec(gpus);
    if (!m) throw new Error(`real-engine harness: gpus "${gpus}" not translated`);
    return { ...base, DeviceIDs: m[1].split(",") };
}

export const NETWORK_INPUTS = ["name", "driver", "ipv6", "ipamConfigs", "labels"] as const;

export function networkCreate(rawInputs: Record<string, unknown>): Docker.NetworkCreateOptions {
    const i = reveal<Record<string, any>>(rawInputs);
    onlyKnownKeys("Network", i, NETWORK_INPUTS);
    const ipam = (i.ipamConfigs ?? []) as Record<string, any>[];
    ipam.forEach((c) => onlyKnownKeys("Network.ipamConfigs[]", c, ["subnet"]));
    return {
        Name: i.name,
        Driver: i.driver ?? "bridge",
        EnableIPv6: i.ipv6 ?? false,
        CheckDuplicate: true,
        IPAM: { Driver: "default", Config: ipam.map((c) => ({ Subnet: c.subnet })) },
        Labels: labelsObject(i.labels),
    };
}

export const VOLUME_INPUTS = ["name", "driver", "driverOpts", "labels"] as const;

export function volumeCreate(rawInputs: Record<string, unknown>): Docker.VolumeCreateOptions {
    const i = reveal<Record<string, any>>(rawInputs);
    onlyKnownKeys("Volume", i, VOLUME_INPUTS);
    return { Name: i.name, Driver: i.driver ?? "local", DriverOpts: i.driverOpts ?? {}, Labels: labelsObject(i.labels) };
}

export const LOCAL_COMMAND_INPUTS = ["create", "update", "stdin", "triggers", "interpreter", "addPreviousOutputInEnv", "environment"] as const;

export interface CommandPlan {
    interpreter: string[];
    create: string;
    update?: string;
    stdin?: string;
    environment: Record<string, string>;
}

export function localCommandPlan(rawInputs: Record<string, unknown>): CommandPlan {
    const i = reveal<Record<string, any>>(rawInputs);
    onlyKnownKeys("command:local:Command", i, LOCAL_COMMAND_INPUTS);
    if (typeof i.create !== "string") throw new Error("real-engine harness: a local Command without `create` is not translated");
    if (i.addPreviousOutputInEnv !== undefined && i.addPreviousOutputInEnv !== false) {
        throw new Error("real-engine harness: addPreviousOutputInEnv=true not translated");
    }
    return { interpreter: i.interpreter ?? ["/bin/sh", "-c"], create: i.create, update: i.update, stdin: i.stdin, environment: i.environment ?? {} };
}
