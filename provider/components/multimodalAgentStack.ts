/**
 * MultimodalAgentStack for every Pulumi language: the TypeScript API's MultimodalAgentStack
 * (components/multimodalAgentStack.ts) behind inputs the schema inference can express. The
 * services are the stack config's `services` section as plain objects (validated by the stack
 * config's own schema, so defaults and messages are the same), the storage is StorageLayout's
 * outputs (`dockerVolumeNames`, `gates`) instead of the `storage` lookup functions, GPU
 * selections are strings, the host is the flat `ssh*` inputs.
 */
import * as pulumi from "@pulumi/pulumi";
import { SERVICE_ROLES, ServiceRole, ServicesConfig } from "../../components/config";
import { MultimodalAgentStack as CoreMultimodalAgentStack, MultimodalAgentStackArgs as CoreMultimodalAgentStackArgs } from "../../components/multimodalAgentStack";
import { ROLES } from "../../components/roles";
import {
    checkLocalConnection,
    checkPlainConnection,
    connectionConfig,
    CONNECTION_PATHS,
    gateDependency,
    HostConnectionArgs,
    hostAccess,
    hostDockerProvider,
    optionDependsOn,
} from "../hostAccess";
import { PROVIDER_TOKENS } from "../tokens";
import { inputError, InputChecker, parseGpuList, Problem, withoutNulls } from "../validation";
import { checkDockerSshDir } from "./nvidiaHost";

/** An extra volume mounted into a service (a StorageLayout volume named in `dockerVolumeNames`). */
export interface ServiceVolumeMount {
    /** Volume name: a key of `dockerVolumeNames`. */
    name: string;
    /** Absolute mount point in the container. */
    target: string;
    /** Mount read-only (input data). Default: false. */
    readOnly?: boolean;
}

/** One service's settings (the stack config's `services.<role>`). */
export interface ServiceSettings {
    /** Run this service. Default: true, except vectorDb (false). */
    enabled?: boolean;
    /** Image, pinned by tag or digest. Default: the role's (README table). */
    image?: string;
    /** CPUs the container may run on, e.g. "0-3,5". Default: unpinned. */
    cpuSet?: string;
    /** Memory limit in MiB (at least 16). Default: none. */
    memoryMiB?: number;
    /** /dev/shm size in MiB. Default: the role's. */
    shmSizeMiB?: number;
    /** Extra environment; wins over the role's own variables. Default: {}. */
    env?: { [name: string]: string };
    /** GPUs for this service: "none", "all", or indices/UUIDs separated by commas; only GPUs of `hostGpus`. Default: inference: all of `hostGpus`; others: none. */
    gpus?: string;
    /** Replaces the image's command. Default: the role's. */
    command?: string[];
    /** Replaces the role's healthcheck, Docker `tests` form: ["CMD", "curl", "-f", "http://127.0.0.1:8080/"]. Default: the role's. */
    healthcheck?: string[];
    /** Capabilities to add back after dropping ALL (dangerous ones are refused). Default: the role's. */
    capAdd?: string[];
    /** Extra volumes to mount. Default: []. */
    extraVolumes?: ServiceVolumeMount[];
}

/** The cache's settings: a service's, and its memory budget. */
export interface CacheServiceSettings extends ServiceSettings {
    /** Redis `maxmemory` in MiB (LRU eviction within it). Default: 256. */
    maxMemoryMiB?: number;
}

/** The four roles' settings (the stack config's `services`). */
export interface ServicesSettings {
    /** Ollama (GPU when the host has one). */
    inference?: ServiceSettings;
    /** Open WebUI. */
    agent?: ServiceSettings;
    /** Redis. */
    cache?: CacheServiceSettings;
    /** pgvector (off by default). */
    vectorDb?: ServiceSettings;
}

export interface MultimodalAgentStackArgs extends HostConnectionArgs {
    /** Prefix of container names (`<prefix>-agent`, …): 2-22 lowercase letters, digits and '-'. */
    namePrefix: string;
    /** The services' settings; a role left out gets its defaults. Default: {}. */
    services?: ServicesSettings;
    /** Network the containers join (ReverseProxyNetwork's `networkName`). */
    networkName: pulumi.Input<string>;
    /**
     * Volume name → Docker volume name (StorageLayout's `dockerVolumeNames`): every volume of the
     * enabled roles (README table) and every `extraVolumes` name must be there.
     */
    dockerVolumeNames: pulumi.Input<{ [volume: string]: string }>;
    /** StorageLayout's `gates` output: every container waits for the storage steps listed there. Default: none. */
    storageGates?: pulumi.Input<{ [container: string]: string }>;
    /** GPUs the host offers (NvidiaHost's `gpus` input): "none" means no container gets a GPU. Default: "none". */
    hostGpus?: string;
    /** Request GPUs by CDI device name (the host has CDI on) instead of through the NVIDIA runtime. Default: false. */
    cdi?: boolean;
}

/** The agent's services as containers on the proxy network, on their storage volumes, with generated secrets. */
export class MultimodalAgentStack extends pulumi.ComponentResource {
    /** Role → container name, for each enabled role. */
    public readonly containerNames: pulumi.Output<{ [role: string]: string }>;
    /** The cache password (secret), for clients outside the stack; absent when the cache is off. */
    public readonly cachePassword?: pulumi.Output<string>;

    constructor(name: string, args: MultimodalAgentStackArgs, opts?: pulumi.ComponentResourceOptions) {
        const plain = withoutNulls(args ?? ({} as MultimodalAgentStackArgs));
        const { real, volumes } = multimodalAgentStackArgs(name, plain);
        super(PROVIDER_TOKENS.multimodalAgentStack, name, {}, opts);
        const dependsOn = optionDependsOn(opts);
        const access = hostAccess(real.connection, plain.sshPrivateKey);
        const dockerProvider = hostDockerProvider(name, access, plain.dockerSshDir, { parent: this, dependsOn });
        const names = pulumi.output(plain.dockerVolumeNames).apply((map) => {
            // Known only now when it is another resource's output: checked here, with the same message.
            const missing = missingVolumes(map, volumes);
            if (missing) throw inputError("MultimodalAgentStack", name, [missing]);
            return map;
        });
        const gate = gateDependency(plain.storageGates);
        const stack = new CoreMultimodalAgentStack(
            name,
            {
                ...real.args,
                storage: { dockerVolumeName: (volume) => names.apply((map) => map[volume]), gatesFor: () => [] },
                dependsOn: [...dependsOn, ...(gate ? [gate] : [])],
            },
            { parent: this, providers: [dockerProvider] },
        );
        this.containerNames = pulumi.output(stack.containerNames as Record<string, string>);
        this.cachePassword = stack.cachePassword;
        this.registerOutputs({ containerNames: this.containerNames, cachePassword: this.cachePassword });
    }
}

/** `dockerVolumeNames` must name every volume a container mounts. */
function missingVolumes(map: Record<string, string> | undefined, volumes: string[]): Problem | undefined {
    const missing = volumes.filter((vol) => map?.[vol] === undefined || map[vol] === "");
    if (missing.length === 0) return undefined;
    return {
        propertyPath: "dockerVolumeNames",
        reason: `no Docker volume for ${missing.map((m) => `"${m}"`).join(", ")}: map each volume the enabled services mount to its Docker volume name (StorageLayout's dockerVolumeNames output)`,
    };
}

/** The stack config's `services` for these settings (GPU strings as lists; extra volumes get a profile the config requires and this component does not use). */
function servicesConfig(services: ServicesSettings | undefined): unknown {
    if (services === undefined || services === null || typeof services !== "object") return services;
    return Object.fromEntries(
        Object.entries(services as Record<string, ServiceSettings | null>).map(([role, s]) => {
            if (s === null || typeof s !== "object") return [role, s];
            const out: Record<string, unknown> = { ...s, gpus: parseGpuList(s.gpus) };
            if (Array.isArray(s.extraVolumes)) out.extraVolumes = s.extraVolumes.map((ev: ServiceVolumeMount | null) => (ev && typeof ev === "object" ? { profile: "text", ...ev } : ev));
            return [role, out];
        }),
    );
}

interface MappedArgs {
    real: { connection: ReturnType<typeof hostAccess>["connection"]; args: Omit<CoreMultimodalAgentStackArgs, "storage" | "dependsOn"> };
    /** Every volume the containers mount. */
    volumes: string[];
}

/** Checks the inputs and maps them to the TypeScript API's MultimodalAgentStackArgs; throws every problem at once. */
export function multimodalAgentStackArgs(name: string, args: MultimodalAgentStackArgs): MappedArgs {
    const checker = new InputChecker();
    checkPlainConnection(checker, args);
    for (const key of ["namePrefix", "services", "hostGpus", "cdi"] as const) checker.plain(key, args[key]);
    checkLocalConnection(checker, args);
    checkDockerSshDir(checker, args.dockerSshDir);
    for (const key of ["namePrefix", "networkName", "dockerVolumeNames"] as const) {
        if (args[key] === undefined) checker.add(key, "is required");
    }
    checker.throwIfAny("MultimodalAgentStack", name);

    const config = checker.stackConfig(
        withoutNulls({
            namePrefix: args.namePrefix,
            host: { connection: connectionConfig(args), gpus: parseGpuList(args.hostGpus), cdi: args.cdi },
            services: servicesConfig(args.services),
        }),
        [
            ...CONNECTION_PATHS,
            { from: "namePrefix", to: "namePrefix" },
            { from: "host.gpus", to: "hostGpus" },
            { from: "host.cdi", to: "cdi" },
            { from: "services", to: "services", keepRest: true },
        ],
        { hasSshPrivateKey: args.sshPrivateKey !== undefined },
    );
    checker.throwIfAny("MultimodalAgentStack", name);

    const c = config!;
    const services: ServicesConfig = c.services;
    const volumes = SERVICE_ROLES.filter((role) => services[role].enabled).flatMap((role: ServiceRole) => [
        ...ROLES[role].volumes.map((vol) => vol.name),
        ...services[role].extraVolumes.map((ev) => ev.name),
    ]);
    const names = args.dockerVolumeNames;
    if (!pulumi.Output.isInstance(names) && !(names instanceof Promise)) {
        // Known now: checked before anything is created.
        const missing = missingVolumes(withoutNulls(names as Record<string, string>), volumes);
        if (missing) throw inputError("MultimodalAgentStack", name, [missing]);
    }
    return {
        real: {
            connection: c.host.connection,
            args: { namePrefix: c.namePrefix, services, networkName: args.networkName, hostGpus: c.host.gpus, cdi: c.host.cdi },
        },
        volumes,
    };
}
