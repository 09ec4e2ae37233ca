/**
 * The proxy engine "haproxy": a route change loads into the running proxy in place, and not one
 * request fails (issue 11, item 5). The proxy exactly as ReverseProxyNetwork declares it for this
 * engine (component container args, master-worker command, config volume read-only), its config
 * written and loaded by the real host script (components/scripts/proxy-config.sh, MMAGENT_RELOAD
 * "signal"), with the test image plus Debian's HAProxy 2.6 as the proxy image. The same two
 * clients as the Caddy test (test/real/proxyRouteReload.test.ts), with a stricter bar: zero.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import { proxyHaproxyConfig } from "../../components/reverseProxyNetwork";
import { untilTrue } from "../support/e2eHelpers";
import { requirePrerequisites, sh, TEST_IMAGE } from "../support/host";
import { containerIdentity, requestThroughProxy, routeChangesUnderLoad } from "../support/routeChanges";
import { applyProxyConfig, applyProxyConfigAsync, proxyConfigDir, ProxyTestArgs, removeProxyContainer, startProxyContainer } from "../support/proxyContainer";

const NET = "mmtest_reload_h";
const PORT = 18096;
const PROXY = "mmtest-reload-haproxy";
const DATA = "mmtest-reload-haproxy-data";
const BACKENDS = { "mmtest-reload-h-a": "a", "mmtest-reload-h-b": "b" };
const CHANGES = 12;

const base: ProxyTestArgs = {
    engine: "haproxy",
    networkName: NET,
    containerName: PROXY,
    httpPort: PORT,
    tls: "off",
    routes: [{ host: "agent.localhost", upstream: "mmtest-reload-h-a", port: 4000 }],
    dataVolumeName: DATA,
};
const withRoutes = (routes: ProxyTestArgs["routes"]): ProxyTestArgs => ({ ...base, routes });
const configFile = () => `${proxyConfigDir(PROXY)}/haproxy.cfg`;

function cleanup() {
    removeProxyContainer(PROXY);
    spawnSync("docker", ["rm", "-f", ...Object.keys(BACKENDS)]);
    spawnSync("docker", ["network", "rm", NET]);
    spawnSync("docker", ["volume", "rm", DATA]);
}

/**
 * One request through the proxy on a new connection: after a reload, a kept-alive one still
 * belongs to the old worker, which answers its next request with the old routes and
 * "Connection: close" (option idle-close-on-response).
 */
const get = (host: string, urlPath = "/") => requestThroughProxy(PORT, host, urlPath, true);
const proxyIdentity = () => containerIdentity(PROXY);

let firstWrite: ReturnType<typeof startProxyContainer>;

beforeAll(async () => {
    requirePrerequisites({ commands: ["curl"], docker: true, image: true });
    cleanup();
    sh("docker", ["network", "create", "--ipv6", "--subnet", "fd6d:6d61:6765:93::/64", "--subnet", "172.16.93.0/24", NET]);
    sh("docker", ["volume", "create", DATA]);
    for (const [name, body] of Object.entries(BACKENDS)) {
        sh("docker", ["run", "-d", "--init", "--name", name, "--network", NET, "-e", "XDG_DATA_HOME=/tmp", "-e", "XDG_CONFIG_HOME=/tmp", TEST_IMAGE, "caddy", "respond", "--listen", ":4000", body]);
    }
    firstWrite = startProxyContainer(base);
    await untilTrue("the proxy answers for agent.localhost", 30, async () => (await get("agent.localhost").catch(() => ({ body: "" }))).body === "a");
}, 90_000);

afterAll(cleanup);

test("before the proxy exists, the step validates and writes haproxy.cfg, and the proxy starts from that file", () => {
    expect(firstWrite).toEqual({ file: configFile(), sha256: expect.stringMatching(/^[0-9a-f]{64}$/), applied: "written" });
    expect(fs.readFileSync(configFile(), "utf8")).toBe(proxyHaproxyConfig(base));
    expect(fs.readdirSync(proxyConfigDir(PROXY))).toEqual(["haproxy.cfg"]);
});

test(`${CHANGES} route changes under load load in place: same container, each new route answers a new connection when the step returns, 0 failed requests for either client`, async () => {
    const before = proxyIdentity();
    const reports = await routeChangesUnderLoad({
        label: "haproxy: ",
        port: PORT,
        host: "agent.localhost",
        changes: CHANGES,
        variants: [
            { routes: [...base.routes!, { host: "files.localhost", upstream: "mmtest-reload-h-b", port: 4000 }], expect: { "files.localhost": "b" } },
            { routes: [...base.routes!, { host: "agent.localhost", upstream: "mmtest-reload-h-b", port: 4000, path: "/b/*" }], expect: { "agent.localhost/b/x": "b", "files.localhost": "no route" } },
            { routes: base.routes!, expect: { "files.localhost": "no route", "agent.localhost/b/x": "a" } },
        ],
        apply: (routes) => applyProxyConfigAsync(withRoutes(routes)),
        get,
    });
    expect(proxyIdentity()).toEqual(before);
    for (const report of Object.values(reports)) {
        expect(report.requests).toBeGreaterThan(100);
        expect(report.failures).toEqual([]);
        expect(report.longestGapMs).toBeLessThanOrEqual(1000);
    }
    // Not even a retry: the old worker does not close an idle connection under the client
    // (option idle-close-on-response), it answers its next request with "Connection: close".
    expect(reports.keepAlive.retriedOnReusedConnection).toBe(0);
}, 120_000);

test("a config haproxy -c refuses changes nothing: the error names the proxy and HAProxy's reason; the file and the routes stay", async () => {
    const before = { file: fs.readFileSync(configFile(), "utf8"), proxy: proxyIdentity() };
    const broken = proxyHaproxyConfig(base).replace("default_backend be_no_route", "default_backend be_missing");
    expect(() => applyProxyConfig(base, broken)).toThrow(/the new config of mmtest-reload-haproxy is not valid for .*; the proxy keeps its current routes\. haproxy -c said: .*be_missing/s);
    expect(fs.readFileSync(configFile(), "utf8")).toBe(before.file);
    expect(fs.readdirSync(proxyConfigDir(PROXY))).toEqual(["haproxy.cfg"]);
    expect(proxyIdentity()).toEqual(before.proxy);
    expect((await get("agent.localhost")).body).toBe("a");
});

test("a config that validates but fails to load (an address the container does not have) is rolled back: the old worker serves on, file as before", async () => {
    const before = { file: fs.readFileSync(configFile(), "utf8"), proxy: proxyIdentity() };
    // `haproxy -c` binds nothing, so a listener on an address the container lacks (TEST-NET-1) passes it and fails at load.
    const unbindable = proxyHaproxyConfig(base).replace(`bind :${PORT}`, `bind 192.0.2.1:${PORT}`);
    expect(() => applyProxyConfig(base, unbindable)).toThrow(/mmtest-reload-haproxy refused the new config at load time and keeps its current routes: .*cannot bind socket/s);
    expect(fs.readFileSync(configFile(), "utf8")).toBe(before.file);
    expect(fs.readdirSync(proxyConfigDir(PROXY))).toEqual(["haproxy.cfg"]);
    expect(proxyIdentity()).toEqual(before.proxy);
    expect((await get("agent.localhost")).body).toBe("a");
});

test("a restarted proxy (daemon restart, restart policy) starts from the latest routes", async () => {
    applyProxyConfig(withRoutes([...base.routes!, { host: "files.localhost", upstream: "mmtest-reload-h-b", port: 4000 }]));
    sh("docker", ["restart", PROXY]);
    await untilTrue("files.localhost answers after the restart", 30, async () => (await get("files.localhost").catch(() => ({ body: "" }))).body === "b");
});
