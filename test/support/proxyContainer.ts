/**
 * The proxy container exactly as ReverseProxyNetwork declares it (the component's own
 * `containerArgs`: command, dropped capabilities, security options, environment, volumes,
 * healthcheck, sysctls), started with the docker CLI from the test image, for the real tests
 * that need a proxy without the whole stack. Its config arrives the way a deployment delivers
 * it: the config volume is a Docker volume bound to a host directory (as StorageLayout makes
 * it), and the real host script (components/scripts/proxy-config.sh) validates and writes the
 * generated config there before the container is created.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import { containerArgs } from "../../components/container";
import { PROXY_HEALTH_PORT } from "../../components/config";
import {
    PROXY_COMMANDS,
    PROXY_CONFIG_MOUNT,
    PROXY_SYSCTLS,
    proxyCaddyConfig,
    ProxyConfigArgs,
    proxyConfigParams,
    ProxyConfigResult,
    ProxyEngine,
    proxyHaproxyConfig,
} from "../../components/reverseProxyNetwork";
import { HAPROXY_TEST_IMAGE, runHostScript, runHostScriptAsync, ScriptResult, sh, TEST_IMAGE } from "./host";

/**
 * The proxy's arguments in a test: its engine and config, its name, network, port(s) and data
 * volume; with engine "haproxy" and tls "internal", each host's certificate and key (PEM), as the
 * component passes them, and the HTTPS port is published too.
 */
export type ProxyTestArgs = ProxyConfigArgs & { engine?: ProxyEngine; containerName: string; networkName: string; httpPort: number; dataVolumeName: string; certBundles?: string[] };

/** The test image that stands in for the engine's default image. */
export function proxyTestImage(args: Pick<ProxyTestArgs, "engine">): string {
    return args.engine === "haproxy" ? HAPROXY_TEST_IMAGE : TEST_IMAGE;
}

/** The config the component generates for these arguments (Caddy's JSON, or HAProxy's text). */
export function proxyTestConfig(args: ProxyTestArgs): Record<string, unknown> | string {
    return args.engine === "haproxy" ? proxyHaproxyConfig(args) : proxyCaddyConfig(args);
}

/** The host directory of a test proxy's config volume (under the project's /tmp prefix, so the reaper finds a leftover). */
export function proxyConfigDir(containerName: string): string {
    return `/tmp/mmagent-proxy-config-${containerName}`;
}

/** The Docker volume bound to {@link proxyConfigDir}. */
export function proxyConfigVolume(containerName: string): string {
    return `${containerName}-config`;
}

/**
 * Runs the config step for `args` as a deployment does (same parameters, same stdin), with the
 * engine's test image as the proxy image; throws with the script's stderr when it fails.
 */
export function applyProxyConfig(args: ProxyTestArgs, config: Record<string, unknown> | string = proxyTestConfig(args)): ProxyConfigResult {
    return checked(runHostScript("proxy-config", configStepParams(args, config)));
}

/** {@link applyProxyConfig} without blocking the event loop (for tests that drive load meanwhile). */
export async function applyProxyConfigAsync(args: ProxyTestArgs, config: Record<string, unknown> | string = proxyTestConfig(args)): Promise<ProxyConfigResult> {
    return checked(await runHostScriptAsync("proxy-config", configStepParams(args, config)));
}

function configStepParams(args: ProxyTestArgs, config: Record<string, unknown> | string): Record<string, string> {
    return proxyConfigParams({
        configDir: proxyConfigDir(args.containerName),
        containerName: args.containerName,
        image: proxyTestImage(args),
        engine: args.engine,
        adminApi: args.adminApi ?? "loopback",
        config,
        certBundles: args.certBundles,
    });
}

function checked(r: ScriptResult): ProxyConfigResult {
    if (r.status !== 0) throw new Error(`proxy-config.sh failed (${r.status}): ${r.stderr}`);
    return r.json as ProxyConfigResult;
}

/** Removes a test proxy: the container, its config volume and directory (not the data volume, which the test names). */
export function removeProxyContainer(containerName: string): void {
    spawnSync("docker", ["rm", "-f", containerName]);
    spawnSync("docker", ["volume", "rm", proxyConfigVolume(containerName)]);
    fs.rmSync(proxyConfigDir(containerName), { recursive: true, force: true });
}

/** Writes the config, then creates and starts the proxy on `args.networkName`, published on 127.0.0.1:`args.httpPort`. */
export function startProxyContainer(args: ProxyTestArgs): ProxyConfigResult {
    removeProxyContainer(args.containerName);
    const dir = proxyConfigDir(args.containerName);
    fs.mkdirSync(dir, { recursive: true });
    sh("docker", ["volume", "create", "--driver", "local", "--opt", "type=none", "--opt", "o=bind", "--opt", `device=${dir}`, proxyConfigVolume(args.containerName)]);
    const written = applyProxyConfig(args);
    const spec = containerArgs({
        containerName: args.containerName,
        image: proxyTestImage(args),
        networkName: args.networkName,
        aliases: ["proxy"],
        command: PROXY_COMMANDS[args.engine ?? "caddy"],
        envs: (args.engine ?? "caddy") === "caddy" ? ["XDG_DATA_HOME=/data", "XDG_CONFIG_HOME=/data/config"] : [],
        mounts: [
            { volumeName: args.dataVolumeName, target: "/data", readOnly: false },
            { volumeName: proxyConfigVolume(args.containerName), target: PROXY_CONFIG_MOUNT, readOnly: true },
        ],
        ports: [args.httpPort, ...(args.tls === "internal" && args.httpsPort ? [args.httpsPort] : [])].map((port) => ({ internal: port, external: port, ip: "127.0.0.1" })),
        healthcheck: ["CMD", "wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${PROXY_HEALTH_PORT}/`],
        capAdd: [],
        sysctls: PROXY_SYSCTLS,
    }) as any;
    sh("docker", [
        "create",
        "--name", spec.name,
        "--network", args.networkName, "--network-alias", spec.networksAdvanced[0].aliases[1],
        ...spec.ports.flatMap((p: any) => ["-p", `${p.ip}:${p.external}:${p.internal}`]),
        ...spec.capabilities.drops.flatMap((c: string) => ["--cap-drop", c]),
        ...spec.securityOpts.flatMap((o: string) => ["--security-opt", o]),
        ...spec.envs.flatMap((e: string) => ["-e", e]),
        ...spec.mounts.flatMap((m: any) => ["--mount", `type=volume,source=${m.source},target=${m.target}${m.readOnly ? ",readonly" : ""}`]),
        "--health-cmd", spec.healthcheck.tests.slice(1).join(" "), "--health-interval", "1s",
        "--restart", spec.restart,
        ...Object.entries(spec.sysctls ?? {}).flatMap(([k, v]) => ["--sysctl", `${k}=${v}`]),
        "--init",
        proxyTestImage(args), ...spec.command,
    ]);
    sh("docker", ["start", spec.name]);
    return written;
}
