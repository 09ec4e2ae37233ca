/**
 * The proxy container exactly as ReverseProxyNetwork declares it (the component's own
 * `containerArgs`: command, dropped capabilities, security options, environment, volume,
 * healthcheck, uploaded config), started with the docker CLI from the test image, for the real
 * tests that need a proxy without the whole stack.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { containerArgs } from "../../components/container";
import { proxyCaddyConfig, PROXY_SYSCTLS, ReverseProxyNetworkArgs } from "../../components/reverseProxyNetwork";
import { PROXY_HEALTH_PORT } from "../../components/config";
import { sh, TEST_IMAGE } from "./host";

export const CADDY_CONFIG_PATH = "/etc/caddy/mmagent.json";

/** Creates and starts the proxy on `args.networkName`, published on 127.0.0.1:`args.httpPort`. */
export function startProxyContainer(args: ReverseProxyNetworkArgs & { containerName: string; networkName: string; httpPort: number }): void {
    const spec = containerArgs({
        containerName: args.containerName,
        image: TEST_IMAGE,
        networkName: args.networkName,
        aliases: ["proxy"],
        command: ["caddy", "run", "--config", CADDY_CONFIG_PATH],
        envs: ["XDG_DATA_HOME=/data", "XDG_CONFIG_HOME=/data/config"],
        mounts: [{ volumeName: args.dataVolumeName as string, target: "/data", readOnly: false }],
        ports: [{ internal: args.httpPort, external: args.httpPort, ip: "127.0.0.1" }],
        healthcheck: ["CMD", "wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${PROXY_HEALTH_PORT}/`],
        capAdd: [],
        uploads: [{ file: CADDY_CONFIG_PATH, content: JSON.stringify(proxyCaddyConfig(args)) }],
        sysctls: PROXY_SYSCTLS,
    }) as any;
    sh("docker", [
        "create",
        "--name", spec.name,
        "--network", args.networkName, "--network-alias", spec.networksAdvanced[0].aliases[1],
        "-p", `${spec.ports[0].ip}:${spec.ports[0].external}:${spec.ports[0].internal}`,
        ...spec.capabilities.drops.flatMap((c: string) => ["--cap-drop", c]),
        ...spec.securityOpts.flatMap((o: string) => ["--security-opt", o]),
        ...spec.envs.flatMap((e: string) => ["-e", e]),
        "--mount", `type=volume,source=${spec.mounts[0].source},target=${spec.mounts[0].target}`,
        "--health-cmd", spec.healthcheck.tests.slice(1).join(" "), "--health-interval", "1s",
        "--restart", spec.restart,
        ...Object.entries(spec.sysctls ?? {}).flatMap(([k, v]) => ["--sysctl", `${k}=${v}`]),
        "--init",
        TEST_IMAGE, ...spec.command,
    ]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-proxy-config-"));
    try {
        fs.writeFileSync(path.join(dir, "mmagent.json"), spec.uploads[0].content);
        sh("docker", ["cp", path.join(dir, "mmagent.json"), `${spec.name}:${CADDY_CONFIG_PATH}`]);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
    sh("docker", ["start", spec.name]);
}
