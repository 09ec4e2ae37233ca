/**
 * Composes the four components for one environment stack from its validated config.
 * `index.ts` is this plus reading config; tests call it directly too.
 */
import * as pulumi from "@pulumi/pulumi";
import { ProxyRoute } from "./caddyConfig";
import { proxyImage, SERVICE_ROLES, ServiceRole, StackConfig } from "./config";
import { ServiceGpus, serviceGpus, unionGpus } from "./gpus";
import { MultimodalAgentStack } from "./multimodalAgentStack";
import { NvidiaHost } from "./nvidiaHost";
import { ReverseProxyNetwork } from "./reverseProxyNetwork";
import { containerName, PROXY_STOP_GRACE_SECONDS, ROLES } from "./roles";
import { NfsSource, ServiceGuard, StorageLayout, StoragePlacement, VolumeSpec } from "./storageLayout";
import { GpuInfo, SnapshotInfo } from "./types";

/** Secrets {@link composeStack} takes besides the config. */
export interface StackSecrets {
    /**
     * SSH private key for an ssh host (config validation refuses an ssh host without one).
     * @default none (a local host needs no key)
     */
    sshPrivateKey?: pulumi.Input<string>;
}

/** What {@link composeStack} returns: the program's stack outputs. */
export interface StackOutputs {
    /** URL per routed host name. */
    urls: Record<string, string>;
    /** GPUs as a container sees them. */
    gpus: pulumi.Output<GpuInfo[]>;
    /** The host's Docker engine version (`docker version`'s server version), as the prepare step reported it. */
    dockerVersion: pulumi.Output<string>;
    /** The Docker network the proxy and the services share. */
    networkName: pulumi.Output<string>;
    /** Container name per enabled role, and the proxy. */
    containers: Record<string, string>;
    /** Volume name → host path. */
    volumePaths: pulumi.Output<Record<string, string>>;
    /** Container name → its latest pre-change snapshot (the `restoreFrom` value is `.snapshot`). */
    snapshots: pulumi.Output<Record<string, SnapshotInfo>>;
    /** Where the volumes live, backend as resolved on the host; the next `up` refuses a different place (see StorageLayout). */
    storage: pulumi.Output<StoragePlacement>;
    /**
     * The CA certificate (PEM) browsers and clients trust for the routed hosts: engine "haproxy"
     * with tls "internal". undefined otherwise (engine "caddy" keeps its CA in the proxy's data volume).
     */
    proxyCaCertificate?: pulumi.Output<string>;
}

/**
 * The stack's own outputs from its last deployment: a stack reference to itself, which the
 * engine answers from the latest checkpoint (also at preview).
 */
export function lastDeployment(prefix: string): pulumi.StackReference {
    return new pulumi.StackReference(`${prefix}-last-deployment`, { name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}` });
}

/** The proxy's own state, mounted at `/data` (Caddy's data directory: certificates and keys). */
export const PROXY_DATA_VOLUME = "proxy-data";
/** The proxy's routes (written by its config step, read-only in the proxy, never snapshotted). */
export const PROXY_CONFIG_VOLUME = "proxy-config";

/** Every volume of the stack with its profile and the container that writes it. Pure. */
export function planVolumes(config: StackConfig): VolumeSpec[] {
    const quota = (name: string) => config.storage.quotasGiB[name];
    const volumes: VolumeSpec[] = [
        { name: PROXY_DATA_VOLUME, profile: "text", service: proxyContainerName(config), quotaGiB: quota(PROXY_DATA_VOLUME) },
        { name: PROXY_CONFIG_VOLUME, profile: "text", readOnly: true, service: proxyContainerName(config), quotaGiB: quota(PROXY_CONFIG_VOLUME) },
    ];
    for (const role of SERVICE_ROLES) {
        const s = config.services[role];
        if (!s.enabled) continue;
        const service = containerName(config.namePrefix, role);
        for (const v of [...ROLES[role].volumes, ...s.extraVolumes]) {
            const nfs = "nfs" in v ? (v.nfs as NfsSource | undefined) : undefined;
            volumes.push({ name: v.name, profile: v.profile, readOnly: v.readOnly, service, quotaGiB: quota(v.name), ...(nfs ? { nfs } : {}) });
        }
    }
    return volumes;
}

/** Pre-change snapshot guards: container → image about to run (and a pending restore). Pure. */
export function planGuards(config: StackConfig): Record<string, ServiceGuard> {
    const guards: Record<string, ServiceGuard> = {
        [proxyContainerName(config)]: { container: proxyContainerName(config), image: proxyImage(config), stopGraceSeconds: PROXY_STOP_GRACE_SECONDS },
    };
    for (const role of SERVICE_ROLES) {
        const s = config.services[role];
        if (!s.enabled) continue;
        const container = containerName(config.namePrefix, role);
        guards[container] = { container, image: s.image, restoreFrom: s.restoreFrom, stopGraceSeconds: ROLES[role].stopGraceSeconds };
    }
    return guards;
}

/** Proxy routes: each service with a `host`, then the extra `proxy.routes`. Pure. */
export function planRoutes(config: StackConfig): ProxyRoute[] {
    const routes: ProxyRoute[] = [];
    for (const role of SERVICE_ROLES) {
        const s = config.services[role];
        if (s.enabled && s.host) routes.push({ host: s.host, upstream: containerName(config.namePrefix, role), port: ROLES[role].port });
    }
    for (const r of config.proxy.routes) {
        routes.push({ host: r.host, upstream: containerName(config.namePrefix, r.service as ServiceRole), port: r.port, path: r.path });
    }
    return routes;
}

/** The GPUs the stack's containers get together: what the host's smoke test selects. Pure. */
export function planSmokeTestGpus(config: StackConfig): ServiceGpus {
    const roles = SERVICE_ROLES.filter((r) => config.services[r].enabled && ROLES[r].gpuCapable);
    return unionGpus(roles.map((r) => serviceGpus(r, config.services[r].gpus, config.host.gpus)));
}

/** The proxy container's name: `<namePrefix>-proxy`. */
export function proxyContainerName(config: StackConfig): string {
    return `${config.namePrefix}-proxy`;
}

/**
 * Creates the stack: {@link NvidiaHost}, {@link StorageLayout}, {@link ReverseProxyNetwork} and
 * {@link MultimodalAgentStack}, wired from one validated config.
 * @param secrets defaults to `{}` (no SSH key: enough for a local host).
 */
export function composeStack(config: StackConfig, secrets: StackSecrets = {}): StackOutputs {
    const prefix = config.namePrefix;
    const host = new NvidiaHost(`${prefix}-host`, {
        connection: config.host.connection,
        privateKey: secrets.sshPrivateKey,
        gpus: config.host.gpus,
        toolkitVersion: config.host.toolkitVersion,
        cdi: config.host.cdi,
        sysctls: config.host.sysctls,
        gpuSmokeTestImage: config.host.gpuSmokeTestImage,
        smokeTestGpus: planSmokeTestGpus(config),
    });
    const onHost = { providers: [host.dockerProvider] };

    const storage = new StorageLayout(
        `${prefix}-storage`,
        {
            host: host.access,
            backend: config.storage.backend,
            root: config.storage.root,
            volumes: planVolumes(config),
            services: planGuards(config),
            keepSnapshots: config.storage.retention.keep,
            dockerNamePrefix: prefix,
            dependsOn: [host.ready],
            previousPlacement: lastDeployment(prefix).getOutput("storage") as pulumi.Output<StoragePlacement | undefined>,
        },
        onHost,
    );

    const routes = planRoutes(config);
    const edge = new ReverseProxyNetwork(
        `${prefix}-edge`,
        {
            host: host.access,
            configVolume: {
                dockerVolumeName: storage.volume(PROXY_CONFIG_VOLUME).dockerVolume.name,
                hostPath: storage.hostPath(PROXY_CONFIG_VOLUME),
            },
            networkName: config.network.name,
            ipv6Subnet: config.network.ipv6Subnet,
            ipv4Subnet: config.network.ipv4Subnet,
            containerName: proxyContainerName(config),
            engine: config.proxy.engine,
            image: proxyImage(config),
            bindAddress: config.proxy.bindAddress,
            allowPublicBind: config.allowPublicBind,
            httpPort: config.proxy.httpPort,
            httpsPort: config.proxy.httpsPort,
            tls: config.proxy.tls,
            acmeEmail: config.proxy.acmeEmail,
            adminApi: config.proxy.adminApi,
            routes,
            dataVolumeName: storage.volume(PROXY_DATA_VOLUME).dockerVolume.name,
            dependsOn: storage.gatesFor(proxyContainerName(config)),
        },
        onHost,
    );

    const agents = new MultimodalAgentStack(
        `${prefix}-agents`,
        {
            namePrefix: prefix,
            services: config.services,
            networkName: edge.networkName,
            storage: {
                dockerVolumeName: (v) => storage.volume(v).dockerVolume.name,
                gatesFor: (c) => storage.gatesFor(c),
            },
            hostGpus: config.host.gpus,
            cdi: config.host.cdi,
        },
        onHost,
    );

    return {
        urls: edge.urls,
        gpus: host.gpus,
        dockerVersion: host.dockerVersion,
        networkName: edge.networkName,
        containers: { ...agents.containerNames, proxy: proxyContainerName(config) },
        volumePaths: storage.paths,
        snapshots: storage.latestSnapshots,
        storage: storage.placement,
        proxyCaCertificate: edge.caCertificatePem,
    };
}
