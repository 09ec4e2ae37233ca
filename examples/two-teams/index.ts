/**
 * Two teams' agent stacks on one host, behind one proxy (HAProxy, with the stack's own CA) on one
 * shared proxy network, composed from the published components (not the mmagent program): one
 * NvidiaHost, one ReverseProxyNetwork with both teams' routes, and per team a StorageLayout and
 * a MultimodalAgentStack whose containers join the shared network.
 *
 * Build the package first (from the repository root): `npm pack` writes
 * mmagent-components-0.1.0.tgz, which package.json names; then `npm install` here.
 */
import * as pulumi from "@pulumi/pulumi";
import {
    MultimodalAgentStack,
    NvidiaHost,
    parseStackConfig,
    planGuards,
    planRoutes,
    planVolumes,
    proxyImage as engineImage,
    ReverseProxyNetwork,
    StackConfig,
    StorageLayout,
} from "@mmagent/components";

const cfg = new pulumi.Config();
const storageRoot = cfg.get("storageRoot") ?? ".mmagent-data/two-teams";

/** What both teams share: the host, the network and the proxy. */
const shared = {
    host: { connection: { kind: "local" }, gpus: "none" },
    network: { name: "two-teams-proxy", ipv6Subnet: "fd6d:6d61:6765:7::/64", ipv4Subnet: "172.16.77.0/24" },
    proxy: { bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443, tls: "internal" },
};

/** One team's stack config, validated by the package's own schema (its namePrefix keeps names apart). */
function teamConfig(team: string, services: Record<string, unknown>): StackConfig {
    return parseStackConfig(
        { ...shared, namePrefix: team, storage: { backend: "dir", root: `${storageRoot}/${team}` }, services },
        { projectDir: __dirname, stackName: pulumi.getStack(), hasSshPrivateKey: false, environment: process.env },
    );
}

const teams = {
    vision: teamConfig("vision", { agent: { host: "vision.localhost" }, inference: { memoryMiB: 4096 }, vectorDb: { enabled: false } }),
    speech: teamConfig("speech", { agent: { host: "speech.localhost" }, inference: { memoryMiB: 2048 }, vectorDb: { enabled: true } }),
};

const host = new NvidiaHost("shared-host", { connection: { kind: "local" }, gpus: "none" });
const onHost = { providers: [host.dockerProvider] };

// The proxy's own volumes (its data and its route config) and pre-change guard.
const proxyContainer = "shared-proxy";
const proxyImage = engineImage(Object.values(teams)[0]);
const edgeStorage = new StorageLayout(
    "shared-edge-storage",
    {
        host: host.access,
        backend: "dir",
        root: `${storageRoot}/edge`,
        volumes: [
            { name: "proxy-data", profile: "text", service: proxyContainer },
            { name: "proxy-config", profile: "text", readOnly: true, service: proxyContainer },
        ],
        services: { [proxyContainer]: { container: proxyContainer, image: proxyImage, stopGraceSeconds: 10 } },
        dockerNamePrefix: "shared",
        dependsOn: [host.ready],
    },
    onHost,
);

// Each team's storage: its own volumes and guards, without the per-stack proxy the plan includes.
const isTeamVolume = (service: string | undefined, team: StackConfig) => service !== `${team.namePrefix}-proxy`;
const teamStorage = Object.fromEntries(
    Object.entries(teams).map(([team, c]) => [
        team,
        new StorageLayout(
            `${team}-storage`,
            {
                host: host.access,
                backend: c.storage.backend,
                root: c.storage.root,
                volumes: planVolumes(c).filter((v) => isTeamVolume(v.service, c)),
                services: Object.fromEntries(Object.entries(planGuards(c)).filter(([container]) => isTeamVolume(container, c))),
                keepSnapshots: c.storage.retention.keep,
                dockerNamePrefix: team,
                dependsOn: [host.ready],
            },
            onHost,
        ),
    ]),
);

const edge = new ReverseProxyNetwork(
    "shared-edge",
    {
        host: host.access,
        configVolume: {
            dockerVolumeName: edgeStorage.volume("proxy-config").dockerVolume.name,
            hostPath: edgeStorage.hostPath("proxy-config"),
        },
        networkName: shared.network.name,
        ipv6Subnet: shared.network.ipv6Subnet,
        ipv4Subnet: shared.network.ipv4Subnet,
        containerName: proxyContainer,
        image: proxyImage,
        bindAddress: shared.proxy.bindAddress,
        httpPort: shared.proxy.httpPort,
        httpsPort: shared.proxy.httpsPort,
        tls: "internal",
        // Both teams' routes in one proxy config (and a certificate per host); upstreams are `<team>-<role>` on the shared network.
        routes: Object.values(teams).flatMap((c) => planRoutes(c)),
        dataVolumeName: edgeStorage.volume("proxy-data").dockerVolume.name,
        dependsOn: edgeStorage.gatesFor(proxyContainer),
    },
    onHost,
);

const agents = Object.fromEntries(
    Object.entries(teams).map(([team, c]) => [
        team,
        new MultimodalAgentStack(
            `${team}-agents`,
            {
                namePrefix: team,
                services: c.services,
                networkName: edge.networkName,
                storage: {
                    dockerVolumeName: (v) => teamStorage[team].volume(v).dockerVolume.name,
                    gatesFor: (container) => teamStorage[team].gatesFor(container),
                },
                hostGpus: c.host.gpus,
            },
            onHost,
        ),
    ]),
);

export const networkName = edge.networkName;
export const urls = edge.urls;
export const containers = Object.fromEntries(Object.entries(agents).map(([team, a]) => [team, a.containerNames]));
