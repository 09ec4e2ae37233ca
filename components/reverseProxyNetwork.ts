/**
 * ReverseProxyNetwork: a user-defined Docker network with IPv6, where containers find each
 * other by name through Docker's DNS, and a reverse proxy on it (HAProxy, or Caddy for ACME) whose
 * routes are code.
 *
 * The routes live in a file on the host (the proxy's read-only config volume), not in the
 * container's inputs: a host step (components/scripts/proxy-config.sh) has the proxy image's own
 * binary validate a new config, writes it, and makes the running proxy load it in place. A route
 * change is therefore an update of that step alone: the container, its connections and its
 * listeners stay (test/real/proxyRouteReload.test.ts: 0 failed requests under load).
 */
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { buildCaddyConfig, ProxyRoute } from "./caddyConfig";
import { defaultProxyEngine, defaultProxyImage, DEFAULT_IPV6_SUBNET, PROXY_ADMIN_PORT, PROXY_HEALTH_PORT, PROXY_HOLD_PORT } from "./config";
import { buildHaproxyConfig } from "./haproxyConfig";
import { hardenedContainer } from "./container";
import { hostScriptCommand, parseScriptOutput } from "./hostScript";
import { buildInternalCertificates, InternalCertificates } from "./proxyCertificates";
import { networkIpamConfigs } from "./networkAddressing";
import { PROXY_STOP_GRACE_SECONDS } from "./roles";
import { LABELS, TOKENS } from "./tokens";
import { HostAccess } from "./types";

/** Inputs of {@link ReverseProxyNetwork}. */
export interface ReverseProxyNetworkArgs {
    /** The host the proxy runs on (local or SSH): its config step writes and loads the routes there. */
    host: HostAccess;
    /**
     * The proxy's config volume: a Docker volume bound to a host directory (a StorageLayout volume
     * with `readOnly: true`), mounted read-only at `PROXY_CONFIG_MOUNT` (`/etc/caddy/mmagent`). The
     * config step writes `caddy.json` into `hostPath`.
     */
    configVolume: {
        /** The Docker volume's name, mounted into the proxy. */
        dockerVolumeName: pulumi.Input<string>;
        /** The host directory the volume binds, where the config step writes. */
        hostPath: pulumi.Input<string>;
    };
    /** Docker network name. @default "reverse_proxy" */
    networkName?: string;
    /** IPv6 subnet of the network. @default "fd6d:6d61:6765::/64" (a ULA range) */
    ipv6Subnet?: string;
    /**
     * IPv4 subnet. Docker gives every bridge network one; declaring it (and its gateway) keeps
     * the network from drifting after a daemon restart. @default a /24 in 172.16.128.0/17 derived from the network name
     */
    ipv4Subnet?: string;
    /** Proxy container name. @default `${name}-proxy` */
    containerName?: string;
    /**
     * "haproxy": `tls` "internal" (certificates of components/proxyCertificates.ts) or "off", route
     * changes by a master-worker reload that drops no request (components/haproxyConfig.ts); or
     * "caddy": any `tls`, ACME included. @default "caddy" when `tls` is "acme", else "haproxy"
     */
    engine?: ProxyEngine;
    /** Proxy image. @default "caddy:2.10.2-alpine", or "haproxy:2.6.31-alpine" for engine "haproxy" */
    image?: string;
    /**
     * The stack's explicit consent to publish on every interface (config `allowPublicBind`);
     * recorded as the container label `mmagent.allow-public-bind` that the policy pack checks.
     * @default false
     */
    allowPublicBind?: boolean;
    /** Host address the proxy's ports are published on. @default "127.0.0.1" */
    bindAddress?: string;
    /** HTTP port (published and listened on with the same number, so redirects stay right). @default 80 */
    httpPort?: number;
    /** HTTPS port. @default 443 */
    httpsPort?: number;
    /**
     * Certificates: "acme" (public CA; engine "caddy"), "internal" (a CA of the stack's own, or
     * Caddy's with engine "caddy") or "off" (HTTP only). @default "internal"
     */
    tls?: "acme" | "internal" | "off";
    /** ACME account e-mail; required with tls "acme". @default none (no ACME account) */
    acmeEmail?: string;
    /**
     * Caddy's admin API: "loopback" (the container's own 127.0.0.1, never published) lets a route
     * change load in place with no failed request; "off" has no admin API, and a route change
     * restarts the proxy container instead (connections are refused for about a second).
     * @default "loopback"
     */
    adminApi?: "off" | "loopback";
    /** Routes: host (and path) → container name and port. @default [] */
    routes?: ProxyRoute[];
    /** Docker volume for certificates and ACME state (a StorageLayout volume). */
    dataVolumeName: pulumi.Input<string>;
    /** Resources the proxy container waits for (its storage gates). @default [] */
    dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/** The proxy software: see {@link ReverseProxyNetworkArgs.engine}. */
export type ProxyEngine = "caddy" | "haproxy";

/** What {@link buildReverseProxyNetwork} created. */
export interface ReverseProxyNetworkParts {
    /** The proxy network. */
    network: docker.Network;
    /** The proxy container. */
    proxy: docker.Container;
    /** The host step that validates, writes and loads the proxy's config. */
    configStep: command.local.Command | command.remote.Command;
    /** The generated Caddy config (data); empty for engine "haproxy". */
    caddyConfig: Record<string, unknown>;
    /** The generated HAProxy config (text); "" for engine "caddy". */
    haproxyConfig: string;
    /** The internal CA and host certificates (engine "haproxy" with tls "internal"); undefined otherwise. */
    certificates?: InternalCertificates;
}

/** Where the proxy's config volume is mounted in its container (read-only). */
export const PROXY_CONFIG_MOUNT = "/etc/caddy/mmagent";
/** The config file the proxy starts from; the config step replaces it atomically. */
export const PROXY_CONFIG_FILE = `${PROXY_CONFIG_MOUNT}/caddy.json`;
/** The same for engine "haproxy". */
export const PROXY_HAPROXY_CONFIG_FILE = `${PROXY_CONFIG_MOUNT}/haproxy.cfg`;
/** Engine "haproxy" with tls "internal": the host certificates' directory, which the config step replaces whole. */
export const PROXY_CERT_DIR = `${PROXY_CONFIG_MOUNT}/certs`;

/**
 * How each engine runs in its container. HAProxy: master-worker mode (-W), in the foreground
 * (-db), so that SIGUSR2 makes the master load the new file and hand the listening sockets to a
 * new worker (2.6 management guide, "master-worker"); the official image's entrypoint adds the
 * same two flags again, which HAProxy takes as the same setting.
 */
export const PROXY_COMMANDS: Record<ProxyEngine, string[]> = {
    caddy: ["caddy", "run", "--config", PROXY_CONFIG_FILE],
    haproxy: ["haproxy", "-W", "-db", "-f", PROXY_HAPROXY_CONFIG_FILE],
};

/** What the config step reports (proxy-config.sh's JSON line). */
export interface ProxyConfigResult {
    /** Host path of the config file. */
    file: string;
    /** SHA-256 of the config file, hex. */
    sha256: string;
    /** "reloaded" in place (Caddy's admin API, or HAProxy's master-worker reload), "restarted" (admin API off), or "written" (no running proxy yet). */
    applied: "reloaded" | "restarted" | "written";
}

/**
 * The proxy's neighbour cache (ARP/NDP) on its network interface, tuned so that a backend
 * recreated on an address it or another container had before, with a new MAC address (engines
 * since 26 pick MACs at random; only 28+ announce a new one), is found within a few hundred ms.
 * With the kernel's defaults the stale entry sends the proxy's packets to a MAC that is gone for
 * up to 30 s (reachable time) + 5 s (first probe delay) + 3 s (unicast probes): requests hang,
 * then fail with 502 (test/real/proxyChurn.test.ts reproduces this). Entries that are in use are
 * kept fresh by TCP's own confirmations, so this costs an ARP exchange only for idle backends.
 * Per interface (`eth0`, the proxy's one network): the `default` entries are not per network
 * namespace, and runc refuses them.
 */
export const PROXY_SYSCTLS: Record<string, string> = Object.fromEntries(
    ["ipv4", "ipv6"].flatMap((family) => [
        [`net.${family}.neigh.eth0.base_reachable_time_ms`, "500"],
        [`net.${family}.neigh.eth0.delay_first_probe_time`, "0"],
        [`net.${family}.neigh.eth0.ucast_solicit`, "0"],
        [`net.${family}.neigh.eth0.mcast_resolicit`, "3"],
        [`net.${family}.neigh.eth0.retrans_time_ms`, "100"],
    ]),
);

/** The arguments that decide the proxy's Caddy config. */
export type ProxyConfigArgs = Pick<ReverseProxyNetworkArgs, "routes" | "httpPort" | "httpsPort" | "tls" | "acmeEmail" | "adminApi">;

/** The proxy's HAProxy config for these arguments, with the component's defaults filled in. */
export function proxyHaproxyConfig(args: Pick<ReverseProxyNetworkArgs, "routes" | "httpPort" | "httpsPort" | "tls">): string {
    const tls = args.tls ?? "internal";
    if (tls === "acme") throw new Error('engine "haproxy" does not obtain ACME certificates: use engine "caddy" for tls "acme"');
    return buildHaproxyConfig({
        routes: args.routes ?? [],
        httpPort: args.httpPort ?? 80,
        httpsPort: args.httpsPort ?? 443,
        tls,
        certDir: PROXY_CERT_DIR,
        healthPort: PROXY_HEALTH_PORT,
        holdPort: PROXY_HOLD_PORT,
    });
}

/** The proxy's Caddy config for these arguments, with the component's defaults filled in. */
export function proxyCaddyConfig(args: ProxyConfigArgs): Record<string, unknown> {
    return buildCaddyConfig({
        routes: args.routes ?? [],
        httpPort: args.httpPort ?? 80,
        httpsPort: args.httpsPort ?? 443,
        tls: args.tls ?? "internal",
        acmeEmail: args.acmeEmail,
        adminApi: args.adminApi ?? "loopback",
        healthPort: PROXY_HEALTH_PORT,
        adminPort: PROXY_ADMIN_PORT,
        storageRoot: "/data/caddy",
    });
}

/** Parameters of the config step (components/scripts/proxy-config.sh). Exported for the host-side tests. */
export function proxyConfigParams(args: {
    configDir: string;
    containerName: string;
    image: string;
    adminApi: "off" | "loopback";
    /** The Caddy config (data), or the HAProxy config (text). */
    config: Record<string, unknown> | string;
    /** @default "caddy" */
    engine?: ProxyEngine;
    /**
     * Engine "haproxy" with tls "internal": each host's certificate and key (PEM), written as
     * `certs/<n>.pem`; the directory is replaced whole. undefined: no certificate directory.
     * @default undefined
     */
    certBundles?: string[];
}): Record<string, string> {
    const common = { MMAGENT_CONFIG_DIR: args.configDir, MMAGENT_MOUNT: PROXY_CONFIG_MOUNT, MMAGENT_CONTAINER: args.containerName, MMAGENT_IMAGE: args.image };
    if ((args.engine ?? "caddy") === "haproxy") {
        // One parameter per certificate: each stays far below the kernel's 128 KiB per variable.
        const certs = args.certBundles
            ? { MMAGENT_CERTS: String(args.certBundles.length), ...Object.fromEntries(args.certBundles.map((pem, i) => [`MMAGENT_CERT_${i + 1}`, pem])) }
            : {};
        return { ...common, MMAGENT_ENGINE: "haproxy", MMAGENT_CONFIG: String(args.config), MMAGENT_RELOAD: "signal", ...certs };
    }
    // No MMAGENT_ENGINE for Caddy (the script's default): a stack that upgrades sees no change of this step.
    return {
        ...common,
        MMAGENT_CONFIG: typeof args.config === "string" ? args.config : JSON.stringify(args.config, null, 2),
        ...(args.adminApi === "loopback" ? { MMAGENT_RELOAD: "api", MMAGENT_ADMIN: `127.0.0.1:${PROXY_ADMIN_PORT}` } : { MMAGENT_RELOAD: "restart" }),
    };
}

/** Creates the resources of a {@link ReverseProxyNetwork} under `parent`; the class is this plus its outputs. */
export function buildReverseProxyNetwork(name: string, args: ReverseProxyNetworkArgs, parent: pulumi.Resource): ReverseProxyNetworkParts {
    const networkName = args.networkName ?? "reverse_proxy";
    const ipamConfigs = networkIpamConfigs(networkName, args.ipv6Subnet ?? DEFAULT_IPV6_SUBNET, args.ipv4Subnet);
    const network = new docker.Network(
        `${name}-network`,
        { name: networkName, driver: "bridge", ipv6: true, ipamConfigs, labels: [{ label: "mmagent.network", value: networkName }] },
        { parent },
    );

    const httpPort = args.httpPort ?? 80;
    const tls = args.tls ?? "internal";
    const tlsOn = tls !== "off";
    const httpsPort = args.httpsPort ?? 443;
    const bindAddress = args.bindAddress ?? "127.0.0.1";
    const engine = args.engine ?? defaultProxyEngine(tls);
    const caddyConfig = engine === "caddy" ? proxyCaddyConfig(args) : {};
    const haproxyConfig = engine === "haproxy" ? proxyHaproxyConfig(args) : "";
    const certificates = engine === "haproxy" && tls === "internal" ? buildInternalCertificates(name, (args.routes ?? []).map((r) => r.host), parent) : undefined;
    const certBundles = certificates ? pulumi.all(certificates.hosts.map((c) => c.bundlePem)) : pulumi.output(undefined);
    const ports = [{ internal: httpPort, external: httpPort, ip: bindAddress }];
    if (tlsOn) ports.push({ internal: httpsPort, external: httpsPort, ip: bindAddress });
    const containerName = args.containerName ?? `${name}-proxy`;
    const image = args.image ?? defaultProxyImage(engine);
    const configStep = hostScriptCommand(
        `${name}-routes`,
        args.host,
        {
            script: "proxy-config",
            params: pulumi
                .all([args.configVolume.hostPath, certBundles])
                .apply(([configDir, bundles]) =>
                    proxyConfigParams({
                        configDir,
                        containerName,
                        image,
                        engine,
                        adminApi: args.adminApi ?? "loopback",
                        config: engine === "haproxy" ? haproxyConfig : caddyConfig,
                        certBundles: bundles,
                    }),
                ),
            // The config itself: a preview shows a route change field by field (Caddy's JSON as
            // data) or line by line (HAProxy's text); the step's stdin carries it base64-encoded.
            // With certificates, one line per host and when its certificate began: a renewal
            // shows as a changed line (the PEMs themselves are secrets, in the stdin only).
            triggers: [
                engine === "haproxy" ? haproxyConfig.split("\n") : caddyConfig,
                ...(certificates ? [certificates.hosts.map((c) => pulumi.interpolate`${c.host} certificate from ${c.validFrom}`)] : []),
            ],
        },
        // After the proxy's storage gates: a pre-change snapshot stops and starts the proxy.
        { parent, dependsOn: args.dependsOn },
    );
    const proxy = hardenedContainer(
        `${name}-proxy`,
        {
            containerName,
            image,
            networkName: network.name,
            aliases: ["proxy"],
            command: PROXY_COMMANDS[engine],
            envs: engine === "caddy" ? ["XDG_DATA_HOME=/data", "XDG_CONFIG_HOME=/data/config"] : [],
            mounts: [
                { volumeName: args.dataVolumeName, target: "/data", readOnly: false },
                { volumeName: args.configVolume.dockerVolumeName, target: PROXY_CONFIG_MOUNT, readOnly: true },
            ],
            ports,
            healthcheck: ["CMD", "wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${PROXY_HEALTH_PORT}/`],
            // Binding 80/443 as a non-privileged process needs this one capability.
            capAdd: Math.min(...ports.map((p) => p.internal)) < 1024 ? ["NET_BIND_SERVICE"] : [],
            stopGraceSeconds: PROXY_STOP_GRACE_SECONDS,
            sysctls: PROXY_SYSCTLS,
            labels: { "mmagent.role": "proxy", ...(args.allowPublicBind ? { [LABELS.allowPublicBind]: "true" } : {}) },
        },
        // Created only once its config file is on the host.
        { parent, dependsOn: [...(args.dependsOn ?? []), configStep] },
    );
    return { network, proxy, configStep, caddyConfig, haproxyConfig, certificates };
}

/** The component; see the module comment and {@link ReverseProxyNetworkArgs}. */
export class ReverseProxyNetwork extends pulumi.ComponentResource {
    /** The proxy network. */
    public readonly network: docker.Network;
    /** The proxy container. */
    public readonly proxy: docker.Container;
    /** The host step that validates, writes and loads the proxy's routes. */
    public readonly configStep: command.local.Command | command.remote.Command;
    /** What the last config step did: the file, its digest, and how the proxy took it. */
    public readonly configApplied: pulumi.Output<ProxyConfigResult>;
    /** The network's name, for containers joining it. */
    public readonly networkName: pulumi.Output<string>;
    /** The generated Caddy config (data). */
    public readonly caddyConfig: Record<string, unknown>;
    /** Base URL per routed host. */
    public readonly urls: Record<string, string>;
    /**
     * The CA certificate (PEM) clients trust for the routed hosts: engine "haproxy" with tls
     * "internal". undefined otherwise (Caddy's internal CA is in its data volume, `caddy/pki/authorities/local/root.crt`).
     */
    public readonly caCertificatePem?: pulumi.Output<string>;

    constructor(name: string, args: ReverseProxyNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
        super(TOKENS.reverseProxyNetwork, name, {}, opts);
        const parts = buildReverseProxyNetwork(name, args, this);
        this.network = parts.network;
        this.proxy = parts.proxy;
        this.configStep = parts.configStep;
        this.configApplied = parts.configStep.stdout.apply((out) => parseScriptOutput<ProxyConfigResult>(`${name}: proxy config`, out));
        this.networkName = parts.network.name;
        this.caddyConfig = parts.caddyConfig;
        this.urls = routeUrls(args);
        this.caCertificatePem = parts.certificates?.caCertPem;
        this.registerOutputs({ networkName: this.networkName, urls: this.urls, caCertificatePem: this.caCertificatePem });
    }
}

/** The URL a browser uses for each routed host. */
export function routeUrls(args: Pick<ReverseProxyNetworkArgs, "routes" | "tls" | "httpPort" | "httpsPort">): Record<string, string> {
    const tlsOn = (args.tls ?? "internal") !== "off";
    const portNumber = tlsOn ? (args.httpsPort ?? 443) : (args.httpPort ?? 80);
    const suffix = portNumber === (tlsOn ? 443 : 80) ? "" : `:${portNumber}`;
    const out: Record<string, string> = {};
    for (const r of args.routes ?? []) out[r.host] = `${tlsOn ? "https" : "http"}://${r.host}${suffix}${(r.path ?? "/").replace(/\*$/, "")}`;
    return out;
}
