/**
 * No request is dropped while a backend is recreated with a new IP address: the proxy exactly
 * as ReverseProxyNetwork declares it, for each engine at once (the generated Caddy config, and
 * the generated HAProxy config with engine "haproxy"; the component's container args),
 * a backend replaced the way the docker provider replaces a fixed-name container (stop with the
 * grace period, remove, create, start) 20 times, each time on a new IPv4 and IPv6 address, while
 * bounded load runs through the proxy on 127.0.0.1.
 */
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import Docker from "dockerode";
import { requirePrerequisites, sh, TEST_IMAGE } from "../support/host";
import { describeLoad, LoadReport, startLoad } from "../support/load";
import { ProxyTestArgs, removeProxyContainer, startProxyContainer } from "../support/proxyContainer";

const NET = "mmtest_churn";
const V6 = "fd6d:6d61:6765:97::";
const V4 = "172.16.97.";
const BACKEND = "mmtest-churn-backend";
const RECREATIONS = 20;
const engine = new Docker();

/** One proxy per engine, side by side on the same network, in front of the same backend. */
const PROXIES: ProxyTestArgs[] = [
    { engine: "caddy", containerName: "mmtest-churn-proxy", httpPort: 18097, dataVolumeName: "mmtest-churn-proxy-data" },
    { engine: "haproxy", containerName: "mmtest-churn-haproxy", httpPort: 18095, dataVolumeName: "mmtest-churn-haproxy-data" },
].map((p) => ({ ...p, networkName: NET, tls: "off", routes: [{ host: "agent.localhost", upstream: BACKEND, port: 4000 }] }) as ProxyTestArgs);

function cleanup() {
    for (const p of PROXIES) {
        removeProxyContainer(p.containerName);
        spawnSync("docker", ["volume", "rm", p.dataVolumeName]);
    }
    spawnSync("docker", ["rm", "-f", BACKEND]);
    spawnSync("docker", ["network", "rm", NET]);
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
    await runBackend(0, { ipv4: `${V4}10`, ipv6: `${V6}10` });
    for (const p of PROXIES) {
        sh("docker", ["volume", "create", p.dataVolumeName]);
        startProxyContainer(p);
    }
    for (const p of PROXIES) {
        const deadline = Date.now() + 30_000;
        let answered = false;
        while (!answered && Date.now() < deadline) {
            const r = spawnSync("curl", ["-sf", "-H", "Host: agent.localhost", `http://127.0.0.1:${p.httpPort}/`], { encoding: "utf8" });
            answered = r.stdout === "ok 0";
            if (!answered) await new Promise((res) => setTimeout(res, 200));
        }
        if (!answered) throw new Error(`the ${p.engine} proxy did not answer through 127.0.0.1:${p.httpPort}`);
    }
}, 60_000);

afterAll(cleanup);

/** The backend recreated RECREATIONS times under load through every proxy at once; a report per engine. */
async function churn(label: string, addressFor: (n: number) => Address) {
    const loads = PROXIES.map((p) => ({ p, load: startLoad({ url: `http://127.0.0.1:${p.httpPort}/`, host: "agent.localhost" }) }));
    const seen: string[] = [];
    for (let n = 1; n <= RECREATIONS; n++) {
        await removeBackend();
        await runBackend(n, addressFor(n));
        const net = (await engine.getContainer(BACKEND).inspect()).NetworkSettings.Networks[NET];
        seen.push(`${net.IPAddress} ${net.MacAddress}`);
        await new Promise((r) => setTimeout(r, 1000));
    }
    const reports: Record<string, LoadReport> = {};
    for (const { p, load } of loads) {
        reports[p.engine!] = await load.stop();
        console.log(describeLoad(`${p.engine}: ${RECREATIONS} recreations, ${label}`, reports[p.engine!]));
    }
    return { reports, seen };
}

function expectNoneDropped(reports: Record<string, LoadReport>) {
    for (const [name, report] of Object.entries(reports)) {
        expect({ name, failures: report.failures.slice(0, 5) }).toEqual({ name, failures: [] });
        expect({ name, gap: report.longestGapMs <= 1000 }).toEqual({ name, gap: true });
        expect(report.durationMs).toBeLessThanOrEqual(60_000);
    }
}

test(`${RECREATIONS} backend recreations, each on a new IPv4 and IPv6 address, under load: no failed request, no gap without a success over 1 s`, async () => {
    const { reports, seen } = await churn("each on a new address", (n) => ({ ipv4: `${V4}${10 + n}`, ipv6: `${V6}${(0x10 + n).toString(16)}` }));
    expect(new Set(seen.map((s) => s.split(" ")[0])).size).toBe(RECREATIONS);
    expectNoneDropped(reports);
}, 120_000);

test(`${RECREATIONS} backend recreations on addresses used before but with a new MAC each time (engines since 26): no failed request, no gap over 1 s`, async () => {
    // Three addresses in turn, each time with a random MAC: the proxy's neighbour cache holds the
    // address with a MAC that is gone, as it does on a modern engine. Measured here without
    // PROXY_SYSCTLS: 8 requests timed out and a 30 s gap (16 x 502 and a 20 s gap with the earlier
    // 5 s try_duration); with them but a 250 ms dial timeout and ucast probes, gaps of 1.1-1.5 s.
    const { reports, seen } = await churn("reusing 3 addresses with new MACs", (n) => ({ ipv4: `${V4}${40 + (n % 3)}`, ipv6: `${V6}${(0x40 + (n % 3)).toString(16)}`, mac: randomMac() }));
    expect(new Set(seen).size).toBe(RECREATIONS);
    expectNoneDropped(reports);
}, 120_000);
