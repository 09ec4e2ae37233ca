/**
 * No request is dropped while a backend is recreated with a new IP address: the proxy exactly
 * as ReverseProxyNetwork declares it (generated Caddy config, the component's container args),
 * a backend replaced the way the docker provider replaces a fixed-name container (stop with the
 * grace period, remove, create, start) 20 times, each time on a new IPv4 and IPv6 address, while
 * bounded load runs through the proxy on 127.0.0.1.
 */
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import Docker from "dockerode";
import { requirePrerequisites, sh, TEST_IMAGE } from "../support/host";
import { describeLoad, startLoad } from "../support/load";
import { ProxyTestArgs, removeProxyContainer, startProxyContainer } from "../support/proxyContainer";

const NET = "mmtest_churn";
const V6 = "fd6d:6d61:6765:97::";
const V4 = "172.16.97.";
const PORT = 18097;
const PROXY = "mmtest-churn-proxy";
const BACKEND = "mmtest-churn-backend";
const VOLUME = "mmtest-churn-proxy-data";
const RECREATIONS = 20;
const engine = new Docker();

const args: ProxyTestArgs = {
    networkName: NET,
    containerName: PROXY,
    httpPort: PORT,
    tls: "off",
    routes: [{ host: "agent.localhost", upstream: BACKEND, port: 4000 }],
    dataVolumeName: VOLUME,
};

function cleanup() {
    removeProxyContainer(PROXY);
    spawnSync("docker", ["rm", "-f", BACKEND]);
    spawnSync("docker", ["network", "rm", NET]);
    spawnSync("docker", ["volume", "rm", VOLUME]);
}

interface Address {
    ipv4: string;
    ipv6: string;
    /** A MAC of our choosing (engines since 26 pick one at random); the engine's own when unset. */
    mac?: string;
}

/** The backend as the provider creates it (ContainerCreate, ContainerStart); it answers "ok <n>". */
async function runBackend(n: number, at: Address) {
    const c = await engine.createContainer({
        name: BACKEND,
        Image: TEST_IMAGE,
        Cmd: ["caddy", "respond", "--listen", ":4000", `ok ${n}`],
        Env: ["XDG_DATA_HOME=/tmp", "XDG_CONFIG_HOME=/tmp"],
        ...(at.mac ? { MacAddress: at.mac } : {}),
        HostConfig: { NetworkMode: NET, Init: true },
        NetworkingConfig: { EndpointsConfig: { [NET]: { IPAMConfig: { IPv4Address: at.ipv4, IPv6Address: at.ipv6 } } } },
    });
    await c.start();
}

/** What the provider does to replace a fixed-name container (deleteBeforeReplace): ContainerStop with destroyGraceSeconds, ContainerRemove. */
async function removeBackend() {
    const c = engine.getContainer(BACKEND);
    await c.stop({ t: 10 });
    await c.remove();
}

const randomMac = () => `02:42:${Array.from(crypto.randomBytes(4)).map((b) => b.toString(16).padStart(2, "0")).join(":")}`;

beforeAll(async () => {
    requirePrerequisites({ docker: true, image: true });
    cleanup();
    sh("docker", ["network", "create", "--ipv6", "--subnet", `${V6}/64`, "--subnet", `${V4}0/24`, NET]);
    sh("docker", ["volume", "create", VOLUME]);
    await runBackend(0, { ipv4: `${V4}10`, ipv6: `${V6}10` });
    startProxyContainer(args);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
        const r = spawnSync("curl", ["-sf", "-H", "Host: agent.localhost", `http://127.0.0.1:${PORT}/`], { encoding: "utf8" });
        if (r.stdout === "ok 0") return;
        await new Promise((res) => setTimeout(res, 200));
    }
    throw new Error(`the proxy did not answer through 127.0.0.1:${PORT}`);
}, 60_000);

afterAll(cleanup);

async function churn(label: string, addressFor: (n: number) => Address) {
    const load = startLoad({ url: `http://127.0.0.1:${PORT}/`, host: "agent.localhost" });
    const seen: string[] = [];
    for (let n = 1; n <= RECREATIONS; n++) {
        await removeBackend();
        await runBackend(n, addressFor(n));
        const net = (await engine.getContainer(BACKEND).inspect()).NetworkSettings.Networks[NET];
        seen.push(`${net.IPAddress} ${net.MacAddress}`);
        await new Promise((r) => setTimeout(r, 1000));
    }
    const report = await load.stop();
    console.log(describeLoad(`${RECREATIONS} recreations, ${label}`, report));
    return { report, seen };
}

test(`${RECREATIONS} backend recreations, each on a new IPv4 and IPv6 address, under load: no failed request, no gap without a success over 1 s`, async () => {
    const { report, seen } = await churn("each on a new address", (n) => ({ ipv4: `${V4}${10 + n}`, ipv6: `${V6}${(0x10 + n).toString(16)}` }));
    expect(new Set(seen.map((s) => s.split(" ")[0])).size).toBe(RECREATIONS);
    expect(report.failures.slice(0, 5)).toEqual([]);
    expect(report.longestGapMs).toBeLessThanOrEqual(1000);
    expect(report.durationMs).toBeLessThanOrEqual(60_000);
}, 120_000);

test(`${RECREATIONS} backend recreations on addresses used before but with a new MAC each time (engines since 26): no failed request, no gap over 1 s`, async () => {
    // Three addresses in turn, each time with a random MAC: the proxy's neighbour cache holds the
    // address with a MAC that is gone, as it does on a modern engine. Measured here without
    // PROXY_SYSCTLS: 8 requests timed out and a 30 s gap (16 x 502 and a 20 s gap with the earlier
    // 5 s try_duration); with them but a 250 ms dial timeout and ucast probes, gaps of 1.1-1.5 s.
    const { report, seen } = await churn("reusing 3 addresses with new MACs", (n) => ({ ipv4: `${V4}${40 + (n % 3)}`, ipv6: `${V6}${(0x40 + (n % 3)).toString(16)}`, mac: randomMac() }));
    expect(new Set(seen).size).toBe(RECREATIONS);
    expect(report.failures.slice(0, 5)).toEqual([]);
    expect(report.longestGapMs).toBeLessThanOrEqual(1000);
    expect(report.durationMs).toBeLessThanOrEqual(60_000);
}, 120_000);
