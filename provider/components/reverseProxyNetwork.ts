/**
 * ReverseProxyNetwork for every Pulumi language: the TypeScript API's ReverseProxyNetwork
 * (components/reverseProxyNetwork.ts) behind inputs the schema inference can express. The
 * config volume is two flat inputs, the storage gates are StorageLayout's `gates` output, the
 * host is the flat `ssh*` inputs; network and proxy settings are checked with the stack config's
 * rules (the `network` and `proxy` keys).
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { ProxyRoute as CoreProxyRoute } from "../../components/caddyConfig";
import { proxyImage } from "../../components/config";
import { ReverseProxyNetwork as CoreReverseProxyNetwork, ReverseProxyNetworkArgs as CoreReverseProxyNetworkArgs } from "../../components/reverseProxyNetwork";
import * as v from "../../components/validators";
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
import { InputChecker, withoutNulls } from "../validation";
import { checkDockerSshDir } from "./nvidiaHost";

/** How the proxy gets certificates. */
export const TlsMode = {
    /** Public certificates from an ACME CA (needs `acmeEmail` and public host names). */
    Acme: "acme",
    /** Caddy's own local CA. */
    Internal: "internal",
    /** Plain HTTP only. */
    Off: "off",
} as const;
export type TlsMode = (typeof TlsMode)[keyof typeof TlsMode];

/** The proxy software. */
export const ProxyEngine = {
    /** Caddy: certificates from ACME or its internal CA. */
    Caddy: "caddy",
    /** HAProxy: plain HTTP only (tls "off"); route changes drop no request. */
    Haproxy: "haproxy",
} as const;
export type ProxyEngine = (typeof ProxyEngine)[keyof typeof ProxyEngine];

/** Caddy's admin API (never published). */
export const AdminApi = {
    /** No admin API: a route change restarts the proxy container. */
    Off: "off",
    /** On the container's own 127.0.0.1: a route change loads in place. */
    Loopback: "loopback",
} as const;
export type AdminApi = (typeof AdminApi)[keyof typeof AdminApi];

/** One route: a host name (and path prefix) to a container and port on the network. */
export interface ProxyRoute {
    /** Host name matched against the request's Host header, e.g. "agent.example.com". */
    host: string;
    /** Upstream container name, resolved by Docker's DNS on the network. */
    upstream: string;
    /** Upstream port. */
    port: number;
    /** Path prefix such as "/api/*". Default: every path. */
    path?: string;
}

/** What the proxy's config step did last. */
export interface ProxyConfigApplied {
    /** Host path of the config file. */
    file: string;
    /** SHA-256 of the config file, hex. */
    sha256: string;
    /** "reloaded" in place, "restarted" (admin API off), or "written" (no running proxy yet). */
    applied: string;
}

export interface ReverseProxyNetworkArgs extends HostConnectionArgs {
    /** Docker volume the proxy's route config lives in (a StorageLayout volume with `readOnly: true`; its `dockerVolumeNames` entry). */
    configVolumeName: pulumi.Input<string>;
    /** The host directory that volume binds, where the config step writes `caddy.json` (its StorageLayout `paths` entry). */
    configHostPath: pulumi.Input<string>;
    /** Docker volume for certificates and ACME state (a StorageLayout volume). */
    dataVolumeName: pulumi.Input<string>;
    /** Docker network name. Default: "reverse_proxy". */
    networkName?: string;
    /** IPv6 subnet of the network. Default: "fd6d:6d61:6765::/64". */
    ipv6Subnet?: string;
    /** IPv4 subnet of the network. Default: a /24 in 172.16.128.0/17 derived from the network name. */
    ipv4Subnet?: string;
    /** The engine's own address pools, which the subnets must stay out of (daemon.json `default-address-pools`). Default: Docker's built-in pools. */
    dockerAddressPools?: string[];
    /** Proxy container name. Default: `<name>-proxy`. */
    containerName?: string;
    /** The proxy software: "haproxy" (tls "internal" or "off") or "caddy" (any tls). Default: "caddy" for tls "acme", else "haproxy". */
    engine?: ProxyEngine;
    /** Proxy image, pinned by tag or digest. Default: "caddy:2.10.2-alpine", or "haproxy:2.6.31-alpine" for engine "haproxy". */
    image?: string;
    /** Consent to publish on every interface (a `bindAddress` of 0.0.0.0 or ::). Default: false. */
    allowPublicBind?: boolean;
    /** Host address the proxy's ports are published on. Default: "127.0.0.1". */
    bindAddress?: string;
    /** HTTP port (published and listened on with the same number). Default: 80. */
    httpPort?: number;
    /** HTTPS port. Default: 443. */
    httpsPort?: number;
    /** Certificates: "acme" (engine "caddy"), "internal" (a CA of the stack's own; Caddy's with engine "caddy") or "off". Default: "internal". */
    tls?: TlsMode;
    /** ACME account e-mail; required with tls "acme". Default: none. */
    acmeEmail?: string;
    /** Caddy's admin API. Default: "loopback". */
    adminApi?: AdminApi;
    /** Routes. Default: []. */
    routes?: ProxyRoute[];
    /**
     * StorageLayout's `gates` output: the proxy container waits for the storage steps listed there
     * (its pre-change snapshot and pending restore). Default: none.
     */
    storageGates?: pulumi.Input<{ [container: string]: string }>;
}

/** A Docker network with IPv6 and a reverse proxy on it (HAProxy, or Caddy for ACME) whose routes are code. */
export class ReverseProxyNetwork extends pulumi.ComponentResource {
    /** The network's name, for containers joining it (MultimodalAgentStack's `networkName`). */
    public readonly networkName: pulumi.Output<string>;
    /** The proxy container's name. */
    public readonly proxyContainerName: pulumi.Output<string>;
    /** Base URL per routed host. */
    public readonly urls: pulumi.Output<{ [host: string]: string }>;
    /** What the last config step did. */
    public readonly configApplied: pulumi.Output<ProxyConfigApplied>;
    /** The CA certificate (PEM) that clients trust, for engine "haproxy" with tls "internal"; "" otherwise. */
    public readonly caCertificatePem: pulumi.Output<string>;

    constructor(name: string, args: ReverseProxyNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
        const plain = withoutNulls(args ?? ({} as ReverseProxyNetworkArgs));
        const real = reverseProxyNetworkArgs(name, plain);
        super(PROVIDER_TOKENS.reverseProxyNetwork, name, {}, opts);
        const dependsOn = optionDependsOn(opts);
        const dockerProvider = hostDockerProvider(name, real.host, plain.dockerSshDir, { parent: this, dependsOn });
        const gate = gateDependency(plain.storageGates);
        const proxy = new CoreReverseProxyNetwork(
            name,
            { ...real, dependsOn: [...dependsOn, ...(gate ? [gate] : [])] },
            { parent: this, providers: [dockerProvider] },
        );
        this.networkName = proxy.networkName;
        this.proxyContainerName = proxy.proxy.name;
        this.urls = pulumi.output(proxy.urls);
        this.configApplied = proxy.configApplied.apply((r) => ({ file: r.file, sha256: r.sha256, applied: r.applied }));
        this.caCertificatePem = proxy.caCertificatePem ?? pulumi.output("");
        this.registerOutputs({
            networkName: this.networkName,
            proxyContainerName: this.proxyContainerName,
            urls: this.urls,
            configApplied: this.configApplied,
            caCertificatePem: this.caCertificatePem,
        });
    }
}

/** A Docker container name (what the network's DNS resolves). */
const upstream = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, "use a container name on the network (letters, digits, '_', '.', '-'), e.g. \"team-agent\"");

/** Checks the inputs and maps them to the TypeScript API's ReverseProxyNetworkArgs; throws every problem at once. */
export function reverseProxyNetworkArgs(name: string, args: ReverseProxyNetworkArgs): Omit<CoreReverseProxyNetworkArgs, "dependsOn"> {
    const checker = new InputChecker();
    checkPlainConnection(checker, args);
    for (const key of [
        "networkName",
        "ipv6Subnet",
        "ipv4Subnet",
        "dockerAddressPools",
        "containerName",
        "engine",
        "image",
        "allowPublicBind",
        "bindAddress",
        "httpPort",
        "httpsPort",
        "tls",
        "acmeEmail",
        "adminApi",
        "routes",
    ] as const) {
        checker.plain(key, args[key]);
    }
    checkLocalConnection(checker, args);
    checkDockerSshDir(checker, args.dockerSshDir);
    for (const key of ["configVolumeName", "configHostPath", "dataVolumeName"] as const) {
        if (args[key] === undefined) checker.add(key, "is required: pass the StorageLayout output (see the input's description)");
    }
    checker.throwIfAny("ReverseProxyNetwork", name);

    const routes = args.routes ?? [];
    const config = checker.stackConfig(
        withoutNulls({
            allowPublicBind: args.allowPublicBind,
            host: { connection: connectionConfig(args) },
            network: { name: args.networkName, ipv6Subnet: args.ipv6Subnet, ipv4Subnet: args.ipv4Subnet, dockerAddressPools: args.dockerAddressPools },
            proxy: {
                engine: args.engine,
                image: args.image,
                bindAddress: args.bindAddress,
                httpPort: args.httpPort,
                httpsPort: args.httpsPort,
                tls: args.tls,
                acmeEmail: args.acmeEmail,
                adminApi: args.adminApi,
                // The stack's routes name a service; the agent (on by default) stands for every upstream here.
                routes: Array.isArray(routes) ? routes.map((r) => ({ host: r?.host, service: "agent", port: r?.port, path: r?.path })) : routes,
            },
        }),
        [
            ...CONNECTION_PATHS,
            { from: "allowPublicBind", to: "allowPublicBind" },
            { from: "network.name", to: "networkName" },
            { from: "network.ipv6Subnet", to: "ipv6Subnet" },
            { from: "network.ipv4Subnet", to: "ipv4Subnet" },
            { from: "network.dockerAddressPools", to: "dockerAddressPools", keepRest: true },
            { from: "proxy.engine", to: "engine" },
            { from: "proxy.image", to: "image" },
            { from: "proxy.bindAddress", to: "bindAddress" },
            { from: "proxy.httpPort", to: "httpPort" },
            { from: "proxy.httpsPort", to: "httpsPort" },
            { from: "proxy.tls", to: "tls" },
            { from: "proxy.acmeEmail", to: "acmeEmail" },
            { from: "proxy.adminApi", to: "adminApi" },
            { from: "proxy.routes", to: "routes", keepRest: true },
        ],
        { hasSshPrivateKey: args.sshPrivateKey !== undefined },
    );
    if (Array.isArray(routes)) routes.forEach((r, i) => checker.check(`routes[${i}].upstream`, upstream, r?.upstream));
    if (args.containerName !== undefined) checker.check("containerName", v.resourceName, args.containerName);
    checker.throwIfAny("ReverseProxyNetwork", name);

    const c = config!;
    return {
        host: hostAccess(c.host.connection, args.sshPrivateKey),
        configVolume: { dockerVolumeName: args.configVolumeName, hostPath: args.configHostPath },
        dataVolumeName: args.dataVolumeName,
        networkName: c.network.name,
        ipv6Subnet: c.network.ipv6Subnet,
        ipv4Subnet: c.network.ipv4Subnet,
        containerName: args.containerName,
        engine: c.proxy.engine,
        image: proxyImage(c),
        allowPublicBind: c.allowPublicBind,
        bindAddress: c.proxy.bindAddress,
        httpPort: c.proxy.httpPort,
        httpsPort: c.proxy.httpsPort,
        tls: c.proxy.tls,
        acmeEmail: c.proxy.acmeEmail,
        adminApi: c.proxy.adminApi,
        routes: routes.map((r): CoreProxyRoute => ({ host: r.host, upstream: r.upstream, port: r.port, ...(r.path !== undefined ? { path: r.path } : {}) })),
    };
}
