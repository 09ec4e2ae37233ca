/**
 * Fake of `docker:index/container:Container`: kreuzwerker/terraform-provider-docker v4.5.0 (what
 * @pulumi/docker 5.2.0 bridges) with the moby Go client v28.5.2 it is built with.
 *
 * Create sends the request the provider builds, transformed the way the Go client transforms it;
 * Read stores what the provider's Read stores; the schema below is the provider's (ForceNew,
 * Computed, sets, defaults), so a value the daemon or the client rewrites shows up here as the
 * same diff a real `pulumi preview` would show. Sources: docs/provider-behaviour.md.
 */
import type Docker from "dockerode";
import * as tar from "tar-stream";
import { asSet, Created, onlyKnownKeys, Props, PropertyDiff, ResourceFake, Schema, schemaDiff } from "./fake";

const TFP = "kreuzwerker/terraform-provider-docker@v4.5.0:internal/provider";
const MIB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const NS_PER_UNIT: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's `time.ParseDuration` for the forms the program uses ("10s", "1m30s", "250ms"). */
export function durationNs(text: string): number {
    const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g)];
    if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) throw new Error(`real-engine harness: cannot read duration "${text}"`);
    return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * NS_PER_UNIT[p[2]], 0));
}

/**
 * Go's `time.Duration.String()`, as the provider's Read formats healthcheck times: 10s → "10s",
 * 60s → "1m0s", 90s → "1m30s", 0 → "0s", 500ms → "500ms".
 */
export function goDurationString(ns: number): string {
    if (ns === 0) return "0s";
    if (ns < 1e9) {
        if (ns < 1e3) return `${ns}ns`;
        if (ns < 1e6) return `${ns / 1e3}µs`;
        return `${ns / 1e6}ms`;
    }
    const h = Math.floor(ns / 3600e9);
    const m = Math.floor((ns % 3600e9) / 60e9);
    const s = (ns % 60e9) / 1e9;
    return `${h > 0 ? `${h}h` : ""}${h > 0 || m > 0 ? `${m}m` : ""}${s}s`;
}

/**
 * moby/moby@v28.5.2:client/container_create.go (normalizeCapabilities): upper-case, `CAP_` prefix
 * except for "ALL", deduplicated and sorted — what the daemon then stores and returns.
 */
export function normalizeCapabilities(caps: string[] | undefined): string[] | undefined {
    if (!caps) return caps;
    const norm = caps.map((c) => {
        const up = c.toUpperCase();
        return up === "ALL" || up.startsWith("CAP_") ? up : `CAP_${up}`;
    });
    return [...new Set(norm)].sort();
}

/**
 * `${TFP}/resource_docker_container_structures.go` (deviceRequestsSetToDockerRequests): driver
 * (schema default "cdi") and count (default 0) as given, the IDs, capabilities as ONE inner
 * AND-list, options ({} when unset).
 */
export function deviceRequestsToDocker(requests: Props[] | undefined): Docker.DeviceRequest[] | undefined {
    if (!requests) return undefined;
    return requests.map((r) => ({
        Driver: r.driver ?? "cdi",
        Count: r.count ?? 0,
        DeviceIDs: r.deviceIds ?? [],
        Capabilities: [r.capabilities ?? []],
        Options: r.options ?? {},
    }));
}

/** `${TFP}/resource_docker_container_structures.go` (flattenDeviceRequests). */
export function flattenDeviceRequests(requests: Docker.DeviceRequest[] | undefined): Props[] {
    return (requests ?? []).map((r) => ({
        driver: r.Driver,
        count: r.Count,
        ...(r.DeviceIDs && r.DeviceIDs.length > 0 ? { deviceIds: r.DeviceIDs } : {}),
        ...(r.Capabilities?.[0] && r.Capabilities[0].length > 0 ? { capabilities: r.Capabilities[0] } : {}),
        ...(r.Options && Object.keys(r.Options).length > 0 ? { options: r.Options } : {}),
    }));
}

const labelsObject = (labels: { label: string; value: string }[] | undefined): Record<string, string> =>
    Object.fromEntries((labels ?? []).map((l) => [l.label, l.value]));

const HEALTHCHECK_DURATIONS = ["interval", "timeout", "startPeriod", "startInterval"] as const;

/** The schema default of every healthcheck duration is "0s" (`${TFP}/resource_docker_container.go`). */
const canonicalHealthcheck = (h: Props) => ({
    tests: h.tests ?? [],
    ...Object.fromEntries(HEALTHCHECK_DURATIONS.map((k) => [k, h[k] ?? "0s"])),
    retries: h.retries ?? 0,
});

/** `ports` keeps its list but the provider's DiffSuppressFunc compares entries by internal port; ip and protocol have defaults. */
const canonicalPorts = (ports: Props[]) =>
    [...ports]
        .map((p) => ({ internal: p.internal, external: p.external ?? p.internal, ip: p.ip || "0.0.0.0", protocol: p.protocol ?? "tcp" }))
        .sort((a, b) => a.internal - b.internal);

/** `${TFP}/resource_docker_container.go`: the properties this program can declare. */
export const CONTAINER_SCHEMA: Schema = {
    name: { forceNew: true },
    image: { forceNew: true },
    command: { forceNew: true, computed: true },
    envs: { forceNew: true, computed: true, canonical: asSet },
    restart: { forceNew: false, default: "no" },
    networksAdvanced: { forceNew: true, canonical: (n: Props[]) => asSet(n.map((x) => ({ name: x.name, aliases: asSet(x.aliases) }))) },
    mounts: { forceNew: true, canonical: (m: Props[]) => asSet(m.map((x) => ({ ...x, readOnly: x.readOnly ?? false }))) },
    ports: { forceNew: true, canonical: canonicalPorts },
    healthcheck: { forceNew: false, computed: true, canonical: canonicalHealthcheck },
    capabilities: { forceNew: true, canonical: (c: Props) => ({ adds: asSet(c.adds), drops: asSet(c.drops) }) },
    securityOpts: { forceNew: true, computed: true, canonical: asSet },
    privileged: { forceNew: true },
    cpuSet: { forceNew: false },
    memory: { forceNew: false },
    memorySwap: { forceNew: false },
    shmSize: { forceNew: true, computed: true },
    // TypeMap, ForceNew (resource_docker_container.go 1105-1110).
    sysctls: { forceNew: true },
    deviceRequests: {
        forceNew: true,
        canonical: (r: Props[]) => asSet(r.map((x) => ({ ...x, driver: x.driver ?? "cdi", count: x.count ?? 0, deviceIds: asSet(x.deviceIds), capabilities: asSet(x.capabilities) }))),
    },
    uploads: { forceNew: true, canonical: asSet },
    logDriver: { forceNew: true, computed: true },
    logOpts: { forceNew: true },
    labels: { forceNew: true, computed: true, canonical: asSet },
    wait: { forceNew: false, default: false },
    waitTimeout: { forceNew: false, default: 60 },
    init: { forceNew: false, computed: true },
    destroyGraceSeconds: { forceNew: false },
    stopTimeout: { forceNew: true, computed: true },
    mustRun: { forceNew: false, default: true },
};

/** The container create request, the uploads and the wait, as `resourceDockerContainerCreate` builds them. */
export function containerCreateRequest(i: Props): { create: Docker.ContainerCreateOptions; uploads: { file: string; content: string }[]; network?: { name: string; aliases: string[] } } {
    const ports = (i.ports ?? []) as Props[];
    const portKey = (p: Props) => `${p.internal}/${p.protocol ?? "tcp"}`;
    const hc = i.healthcheck as Props | undefined;
    const caps = (i.capabilities ?? {}) as Props;
    const networks = (i.networksAdvanced ?? []) as Props[];
    if (networks.length > 1) throw new Error("real-engine harness: more than one networksAdvanced entry not modelled");
    if (i.gpus !== undefined) throw new Error("real-engine harness: `gpus` is not modelled: docker/cli misreads \"device=0,1\" (use deviceRequests)");
    return {
        create: {
            name: i.name,
            Image: i.image,
            Cmd: i.command,
            Env: i.envs,
            Labels: labelsObject(i.labels),
            ExposedPorts: ports.length > 0 ? Object.fromEntries(ports.map((p) => [portKey(p), {}])) : undefined,
            StopTimeout: i.stopTimeout,
            Healthcheck: hc
                ? {
                      Test: hc.tests,
                      Interval: durationNs(hc.interval ?? "0s"),
                      Timeout: durationNs(hc.timeout ?? "0s"),
                      StartPeriod: durationNs(hc.startPeriod ?? "0s"),
                      Retries: hc.retries ?? 0,
                  }
                : undefined,
            HostConfig: {
                RestartPolicy: { Name: i.restart ?? "no" },
                Mounts: ((i.mounts ?? []) as Props[]).map((m) => ({ Type: m.type, Source: m.source, Target: m.target, ReadOnly: m.readOnly ?? false })),
                PortBindings: ports.length > 0 ? Object.fromEntries(ports.map((p) => [portKey(p), [{ HostIp: p.ip ?? "0.0.0.0", HostPort: String(p.external ?? "") }]])) : undefined,
                // The provider passes the names through; the Go client normalizes them (see normalizeCapabilities).
                CapAdd: normalizeCapabilities(caps.adds),
                CapDrop: normalizeCapabilities(caps.drops),
                SecurityOpt: i.securityOpts,
                Privileged: i.privileged ?? false,
                CpusetCpus: i.cpuSet,
                // memory, memorySwap (when > 0) and shmSize are MiB in the provider.
                Memory: i.memory !== undefined ? i.memory * MIB : undefined,
                MemorySwap: i.memorySwap !== undefined ? (i.memorySwap > 0 ? i.memorySwap * MIB : i.memorySwap) : undefined,
                ShmSize: i.shmSize !== undefined ? i.shmSize * MIB : undefined,
                // resource_docker_container_funcs.go 408-410: the map as given.
                Sysctls: i.sysctls,
                DeviceRequests: deviceRequestsToDocker(i.deviceRequests),
                LogConfig: { Type: i.logDriver ?? "", Config: i.logOpts ?? {} },
                // Always sent, false when unset: a daemon-wide `init: true` never applies.
                Init: i.init ?? false,
                // Created on the default bridge (network_mode's default), then moved to networksAdvanced.
                NetworkMode: "bridge",
            },
        },
        uploads: ((i.uploads ?? []) as Props[]).map((u) => ({ file: u.file, content: u.content })),
        network: networks[0] ? { name: networks[0].name, aliases: networks[0].aliases ?? [] } : undefined,
    };
}

/** What `resourceDockerContainerRead` stores, given the prior state (for what it does not read). */
export function containerReadState(c: Docker.ContainerInspectInfo, prior: Props): Props {
    const h = c.HostConfig as any;
    const ports = Object.entries((c.NetworkSettings?.Ports ?? {}) as Record<string, { HostIp: string; HostPort: string }[] | null>).flatMap(([key, bindings]) =>
        (bindings ?? []).map((b) => ({ internal: Number(key.split("/")[0]), external: Number(b.HostPort), ip: b.HostIp, protocol: key.split("/")[1] })),
    );
    const hc = c.Config.Healthcheck as any;
    const capsSet = (h.CapAdd?.length ?? 0) > 0 || (h.CapDrop?.length ?? 0) > 0;
    return {
        ...prior,
        name: c.Name.replace(/^\/+/, ""),
        image: c.Config.Image,
        command: c.Config.Cmd,
        restart: h.RestartPolicy?.Name,
        mounts: (h.Mounts ?? []).map((m: any) => ({ type: m.Type, source: m.Source, target: m.Target, readOnly: m.ReadOnly ?? false })),
        // Read only when ports are configured and the container runs (or must).
        ports: prior.ports !== undefined ? ports : undefined,
        healthcheck: hc
            ? {
                  tests: hc.Test,
                  interval: goDurationString(hc.Interval ?? 0),
                  timeout: goDurationString(hc.Timeout ?? 0),
                  startPeriod: goDurationString(hc.StartPeriod ?? 0),
                  startInterval: goDurationString(hc.StartInterval ?? 0),
                  retries: hc.Retries ?? 0,
              }
            : prior.healthcheck,
        // The raw HostConfig values, i.e. as the client normalized them.
        capabilities: capsSet ? { adds: h.CapAdd ?? undefined, drops: h.CapDrop ?? undefined } : prior.capabilities,
        securityOpts: h.SecurityOpt ?? undefined,
        privileged: h.Privileged,
        cpuSet: h.CpusetCpus || undefined,
        memory: h.Memory / MIB,
        memorySwap: h.MemorySwap > 0 ? h.MemorySwap / MIB : h.MemorySwap,
        shmSize: h.ShmSize / MIB,
        // resource_docker_container_funcs.go 972: whatever the daemon holds (nil when none).
        sysctls: h.Sysctls ?? undefined,
        deviceRequests: prior.deviceRequests !== undefined ? flattenDeviceRequests(h.DeviceRequests) : undefined,
        logDriver: h.LogConfig?.Type,
        // containerLogOptsForState: only when configured, then the daemon-merged map.
        logOpts: prior.logOpts !== undefined ? h.LogConfig?.Config : undefined,
        init: h.Init ?? false,
        stopTimeout: (c.Config as any).StopTimeout ?? undefined,
        // Not running but must run: Read records must_run false, and the next diff's update starts it.
        mustRun: c.State.Running ? prior.mustRun : false,
    };
}

export const dockerContainer: ResourceFake = {
    type: "docker:index/container:Container",
    mirrors: [
        `${TFP}/resource_docker_container.go (schema)`,
        `${TFP}/resource_docker_container_funcs.go (resourceDockerContainerCreate, Read, Update, Delete)`,
        `${TFP}/resource_docker_container_structures.go (deviceRequestsSetToDockerRequests, flattenDeviceRequests)`,
        "moby/moby@v28.5.2:client/container_create.go (normalizeCapabilities)",
    ],

    check(i) {
        onlyKnownKeys("Container", i, Object.keys(CONTAINER_SCHEMA));
        ((i.networksAdvanced ?? []) as Props[]).forEach((n) => onlyKnownKeys("Container.networksAdvanced[]", n, ["name", "aliases"]));
        ((i.mounts ?? []) as Props[]).forEach((m) => {
            onlyKnownKeys("Container.mounts[]", m, ["type", "source", "target", "readOnly"]);
            if (m.type !== "volume") throw new Error(`real-engine harness: mount type "${m.type}" not modelled`);
        });
        ((i.ports ?? []) as Props[]).forEach((p) => onlyKnownKeys("Container.ports[]", p, ["internal", "external", "ip", "protocol"]));
        if (i.healthcheck) onlyKnownKeys("Container.healthcheck", i.healthcheck, ["tests", "interval", "timeout", "startPeriod", "retries"]);
        onlyKnownKeys("Container.capabilities", i.capabilities ?? {}, ["drops", "adds"]);
        ((i.deviceRequests ?? []) as Props[]).forEach((d) => onlyKnownKeys("Container.deviceRequests[]", d, ["driver", "count", "deviceIds", "capabilities", "options"]));
        ((i.uploads ?? []) as Props[]).forEach((u) => onlyKnownKeys("Container.uploads[]", u, ["file", "content"]));
        if (i.restart !== undefined && !["no", "on-failure", "always", "unless-stopped"].includes(i.restart)) throw new Error(`restart policy "${i.restart}" is refused by the provider's validator`);
    },

    async create(ctx, i): Promise<Created> {
        const { create, uploads, network } = containerCreateRequest(i);
        await ctx.docker.getImage(create.Image!).inspect().catch(() => {
            throw new Error(`image ${create.Image} is not on the engine (no registry here: build it first)`);
        });
        const container = await ctx.docker.createContainer(create);
        if (network) {
            await ctx.docker.getNetwork("bridge").disconnect({ Container: container.id }).catch((e: any) => {
                if (!/is not connected to the network bridge/.test(String(e?.message))) throw e;
            });
            await ctx.docker.getNetwork(network.name).connect({ Container: container.id, EndpointConfig: { Aliases: network.aliases } });
        }
        if (uploads.length > 0) await container.putArchive(await tarOf(uploads), { path: "/" });
        if (i.start ?? true) await container.start();
        if (i.wait) await waitHealthy(container, i.waitTimeout ?? 60);
        return { id: container.id, state: { ...i, mustRun: i.mustRun ?? true } };
    },

    async read(ctx, id, state) {
        const info = await ctx.docker.getContainer(id).inspect().catch((e: any) => {
            if (e?.statusCode === 404) return undefined;
            throw e;
        });
        return info ? containerReadState(info, state) : undefined;
    },

    diff: (state, inputs) => schemaDiff(CONTAINER_SCHEMA, state, inputs),

    /** resourceDockerContainerUpdate: one ContainerUpdate for the resource attributes, a start for must_run; no Read after. */
    async update(ctx, id, state, i, diffs: PropertyDiff[]) {
        const changed = new Set(diffs.map((d) => d.property));
        const c = ctx.docker.getContainer(id);
        if (changed.has("mustRun") && (i.mustRun ?? true)) await c.start().catch((e: any) => (e?.statusCode === 304 ? undefined : Promise.reject(e)));
        if (["restart", "memory", "memorySwap", "cpuSet"].some((k) => changed.has(k))) {
            await c.update({
                RestartPolicy: { Name: i.restart ?? "no" },
                Memory: (i.memory ?? 0) * MIB,
                ...(i.memorySwap ? { MemorySwap: i.memorySwap > 0 ? i.memorySwap * MIB : i.memorySwap } : {}),
                CpusetCpus: i.cpuSet ?? "",
            });
        }
        // The planned values become the state, whether or not the daemon applied them (init, healthcheck are not).
        return { ...state, ...i, mustRun: i.mustRun ?? true };
    },

    /** resourceDockerContainerDelete: stop with destroy_grace_seconds (0 when unset: SIGKILL at once), remove with force. */
    async delete(ctx, id, state) {
        const c = ctx.docker.getContainer(id);
        const t = state.destroyGraceSeconds > 0 ? state.destroyGraceSeconds : 0;
        await c.stop({ t }).catch((e: any) => (e?.statusCode === 304 || e?.statusCode === 404 ? undefined : Promise.reject(e)));
        await c.remove({ force: true, v: true }).catch((e: any) => (e?.statusCode === 404 ? undefined : Promise.reject(e)));
    },
};

async function tarOf(files: { file: string; content: string }[]): Promise<Buffer> {
    const pack = tar.pack();
    for (const f of files) pack.entry({ name: f.file.replace(/^\/+/, ""), mode: 0o644 }, f.content);
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of pack) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
}

/** The provider's `wait`: poll until healthy within wait_timeout; an error when there is no healthcheck. */
async function waitHealthy(container: Docker.Container, seconds: number): Promise<void> {
    const deadline = Date.now() + seconds * 1000;
    let last: any;
    while (Date.now() < deadline) {
        last = await container.inspect();
        if (!last.Config?.Healthcheck) throw new Error(`container ${last.Name} has no healthcheck: the provider's wait needs one`);
        if (last.State?.Health?.Status === "healthy") return;
        await sleep(250);
    }
    const log = (last?.State?.Health?.Log ?? []).slice(-2).map((l: any) => `exit ${l.ExitCode}: ${String(l.Output).trim()}`);
    throw new Error(`container ${last?.Name} not healthy within ${seconds}s (state ${last?.State?.Status}, health ${last?.State?.Health?.Status}); last checks: ${log.join(" | ")}`);
}
