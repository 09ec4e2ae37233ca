/**
 * Proxy candidates side by side, in one run: throughput (wrk -t1 -c16 on 127.0.0.1; with ROUNDS > 1
 * the rounds visit every path in turn and each path's median round is reported, so that load from
 * other processes falls on all paths alike) and churn (the backend recreated CHURN times on a new
 * IPv4/IPv6 address, the way the docker provider replaces a fixed-name container, while bounded
 * load runs through every path at once) and reloads (RELOADS configuration reloads of every proxy,
 * the way each one takes a route change, under two clients per path: one on keep-alive
 * connections that sends a request again when it failed on a reused connection, as Go's net/http
 * does, and one opening a connection per request that never retries). The target (issue 11,
 * items 4 and 5) is all at once: >= 0.5x of direct, 0 failed requests under churn and 0 during
 * reloads; the run ends with the candidates that meet all three.
 *   - direct: the backend's own published port (the reference; during churn it is down while
 *     it is recreated);
 *   - Caddy exactly as ReverseProxyNetwork declares it (generated config, container args and
 *     neighbour sysctls: test/support/proxyContainer.ts);
 *   - the same generated Caddy config tuned for throughput (more idle upstream connections, less
 *     frequent garbage collection), to see whether Caddy itself can get closer to 0.5x;
 *   - nginx as nginx-proxy-manager configures it (resolver 127.0.0.11 + a variable in proxy_pass);
 *   - nginx with a static upstream + keepalive (resolves once, at start);
 *   - HAProxy (Debian's 2.6) exactly as ReverseProxyNetwork declares it with engine "haproxy"
 *     (components/haproxyConfig.ts: Docker's DNS, health checks and a local "hold" backup, so that
 *     requests wait for a recreated backend instead of failing).
 * How each reloads: Caddy (engine caddy) through the product's own config step
 * (components/scripts/proxy-config.sh: validate, write, `caddy reload` over the container-local
 * admin API), with a route added or removed each time; Caddy (tuned) `caddy reload --force`;
 * nginx `nginx -s reload` (a new worker generation on the inherited listening socket); HAProxy
 * through the product's config step too (SIGUSR2 to its master, which hands the listening
 * sockets to a new worker), with a route added or removed each time.
 * Run with `bash bench/proxy.sh` (builds the HAProxy image, then this).
 */
import { spawnSync } from "child_process";
import Docker from "dockerode";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { proxyCaddyConfig, PROXY_SYSCTLS } from "../components/reverseProxyNetwork";
import { requirePrerequisites, sh, TEST_IMAGE } from "../test/support/host";
import { LoadReport, startLoad } from "../test/support/load";
import { PROXY_ADMIN_PORT } from "../components/config";
import * as proxyContainer from "../test/support/proxyContainer";

jest.setTimeout(900_000);
const DURATION = Number(process.env.DURATION ?? 5);
const ROUNDS = Number(process.env.ROUNDS ?? 1);
const CHURN = Number(process.env.CHURN ?? 10);
const RELOADS = Number(process.env.RELOADS ?? 12);
const NET = "mmbench_net";
// Subnets no test uses (test/real/* take 94-99): the bench can run while tests do.
const V6 = "fd6d:6d61:6765:90::";
const V4 = "172.16.90.";
const BACKEND = "mmbench-backend";
const HOST = "bench.localhost";
const engine = new Docker();
const work = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-proxybench-"));
const out = (line: string) => process.stdout.write(`${line}\n`);

interface Candidate {
    label: string;
    port: number;
    container?: string;
}
const DIRECT: Candidate = { label: "direct to the backend", port: 19000 };
const CANDIDATES: Candidate[] = [
    { label: "Caddy, generated config (engine caddy: tls acme)", port: 19001, container: "mmbench-caddy" },
    { label: "Caddy, tuned (64 idle upstream conns, GOGC=400)", port: 19005, container: "mmbench-caddy-tuned" },
    { label: "nginx, NPM-style resolver + variable", port: 19002, container: "mmbench-npm" },
    { label: "nginx, static upstream + keepalive", port: 19003, container: "mmbench-static" },
    { label: "HAProxy 2.6, generated config (default engine)", port: 19004, container: "mmbench-haproxy" },
];
/** The issue's target: throughput of at least this fraction of direct, with 0 failed requests under churn. */
const TARGET_RATIO = 0.5;
const ROUTES = [{ host: HOST, upstream: BACKEND, port: 8000 }];

const nginxConf = (server: string) => `worker_processes 1; error_log stderr; pid /tmp/nginx.pid;\nevents { worker_connections 1024; }\nhttp { access_log off; ${server} }\n`;
const CONF = {
    backend: nginxConf('server { listen 8000; listen [::]:8000; location / { return 200 "ok\\n"; } }'),
    // nginx-proxy-manager's pattern: a variable in proxy_pass makes nginx resolve the name per
    // request through the resolver (cached valid=10s), and there is no upstream keep-alive.
    npm: nginxConf(`server { listen 8000; resolver 127.0.0.11 valid=10s; set $upstream http://${BACKEND}:8000; location / { proxy_pass $upstream; proxy_http_version 1.1; proxy_set_header Host $host; } }`),
    // nginx's fast path: a named upstream with keep-alive connections; the name is resolved once,
    // at start, so it keeps the first address (nginx-proxy-manager#1021).
    static: nginxConf(`upstream be { server ${BACKEND}:8000; keepalive 16; } server { listen 8000; location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } }`),
};

function file(name: string, content: string): string {
    const p = path.join(work, name);
    fs.writeFileSync(p, content);
    return p;
}

function runNginx(name: string, port: number, conf: string) {
    sh("docker", ["run", "-d", "--name", name, "--network", NET, "-p", `127.0.0.1:${port}:8000`, "-v", `${file(`${name}.conf`, conf)}:/etc/nginx/bench.conf:ro`, TEST_IMAGE, "nginx", "-c", "/etc/nginx/bench.conf", "-g", "daemon off;"]);
}

/** The backend on its n-th address, published as `direct`; created and started as the provider does. */
async function runBackend(n: number) {
    const c = await engine.createContainer({
        name: BACKEND,
        Image: TEST_IMAGE,
        Cmd: ["nginx", "-c", "/etc/nginx/bench.conf", "-g", "daemon off;"],
        ExposedPorts: { "8000/tcp": {} },
        HostConfig: {
            NetworkMode: NET,
            Init: true,
            Binds: [`${path.join(work, "backend.conf")}:/etc/nginx/bench.conf:ro`],
            PortBindings: { "8000/tcp": [{ HostIp: "127.0.0.1", HostPort: String(DIRECT.port) }] },
        },
        NetworkingConfig: { EndpointsConfig: { [NET]: { IPAMConfig: { IPv4Address: `${V4}${10 + n}`, IPv6Address: `${V6}${(0x10 + n).toString(16)}` } } } },
    });
    await c.start();
}

/**
 * Caddy with the generated config, tuned for throughput; everything else (routes, dial timeout,
 * retries, neighbour sysctls) as the default candidate:
 *   - transport keep_alive max_idle_conns_per_host 64 (Caddy's default is 32, with a 30 s probe
 *     interval and a 2 min idle timeout, kept here): more than wrk's 16 connections plus the
 *     churn load can need, so no upstream connection is closed for lack of an idle slot;
 *   - GOGC=400: Go collects garbage a quarter as often (the heap may grow 4x between cycles),
 *     trading memory for CPU on a machine where the proxy shares 2 cores with wrk and the backend.
 * Measured before adding it: GOMAXPROCS=1, flush_interval -1 and versions ["1.1"] made no
 * difference beyond noise, and Caddy answering a static response itself (no proxying) reached
 * only ~0.5x of direct, so proxying in this Caddy cannot reach the target; in the bench the
 * tuned one stays within noise of the default (0.24-0.35x against 0.24-0.28x).
 */
function runTunedCaddy(name: string, port: number) {
    // A variable, not a literal, so it fits proxyCaddyConfig's argument before and after that
    // type dropped the container's fields (dataVolumeName is required by the older one, unused).
    const args = { routes: ROUTES, httpPort: port, tls: "off" as const, dataVolumeName: `${name}-data` };
    const config = proxyCaddyConfig(args) as any;
    for (const server of Object.values(config.apps.http.servers) as any[]) {
        for (const route of server.routes ?? []) {
            for (const h of route.handle ?? []) {
                if (h.handler === "reverse_proxy") h.transport = { ...h.transport, keep_alive: { probe_interval: "30s", idle_timeout: "2m", max_idle_conns_per_host: 64 } };
            }
        }
    }
    sh("docker", [
        "run", "-d", "--name", name, "--network", NET, "-p", `127.0.0.1:${port}:${port}`, "-e", "GOGC=400",
        ...Object.entries(PROXY_SYSCTLS).flatMap(([k, v]) => ["--sysctl", `${k}=${v}`]),
        "-v", `${file(`${name}.json`, JSON.stringify(config))}:/etc/caddy/bench.json:ro`, TEST_IMAGE, "caddy", "run", "--config", "/etc/caddy/bench.json",
    ]);
}

/** The default candidate's arguments, as the product's config step receives them. */
const DEFAULT_CADDY: proxyContainer.ProxyTestArgs = { containerName: "mmbench-caddy", networkName: NET, httpPort: 19001, tls: "off", routes: ROUTES, dataVolumeName: "mmbench-caddy-data" };
/** The HAProxy candidate's arguments: the same, with engine "haproxy". */
const ENGINE_HAPROXY: proxyContainer.ProxyTestArgs = { ...DEFAULT_CADDY, engine: "haproxy", containerName: "mmbench-haproxy", httpPort: 19004, dataVolumeName: "mmbench-haproxy-data" };

/** One configuration reload of a candidate, the way it takes a route change (see the module comment). */
async function reload(c: Candidate, n: number): Promise<void> {
    switch (c.container) {
        case "mmbench-caddy":
        case "mmbench-haproxy": {
            // A route added on odd reloads and removed on even ones: a real route change each time.
            const routes = n % 2 ? [...ROUTES, { host: "other.localhost", upstream: BACKEND, port: 8000 }] : ROUTES;
            await proxyContainer.applyProxyConfigAsync({ ...(c.container === "mmbench-caddy" ? DEFAULT_CADDY : ENGINE_HAPROXY), routes });
            return;
        }
        case "mmbench-caddy-tuned":
            sh("docker", ["exec", c.container, "caddy", "reload", "--force", "--config", "/etc/caddy/bench.json", "--address", `127.0.0.1:${PROXY_ADMIN_PORT}`]);
            return;
        case "mmbench-npm":
        case "mmbench-static":
            sh("docker", ["exec", c.container, "nginx", "-c", "/etc/nginx/bench.conf", "-s", "reload"]);
            return;
    }
}

function cleanup() {
    spawnSync("docker", ["rm", "-f", BACKEND, ...CANDIDATES.map((c) => c.container!)]);
    for (const p of [DEFAULT_CADDY, ENGINE_HAPROXY]) proxyContainer.removeProxyContainer(p.containerName);
    spawnSync("docker", ["network", "rm", NET]);
    spawnSync("docker", ["volume", "rm", DEFAULT_CADDY.dataVolumeName, ENGINE_HAPROXY.dataVolumeName]);
}

async function answering(port: number): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
        if (spawnSync("curl", ["-sf", "-o", "/dev/null", "-H", `Host: ${HOST}`, `http://127.0.0.1:${port}/`]).status === 0) return;
        await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`nothing answers on 127.0.0.1:${port}`);
}

function wrk(port: number): { rps: number; p50: string; p99: string } {
    const r = sh("wrk", ["-t1", "-c16", `-d${DURATION}s`, "--latency", "-H", `Host: ${HOST}`, `http://127.0.0.1:${port}/`]);
    const field = (re: RegExp) => re.exec(r)?.[1] ?? "?";
    return { rps: Number(field(/Requests\/sec:\s+([\d.]+)/)), p50: field(/^\s+50%\s+(\S+)/m), p99: field(/^\s+99%\s+(\S+)/m) };
}

beforeAll(async () => {
    requirePrerequisites({ commands: ["wrk", "curl"], docker: true, image: true });
    cleanup();
    sh("docker", ["network", "create", "--ipv6", "--subnet", `${V6}/64`, "--subnet", `${V4}0/24`, NET]);
    file("backend.conf", CONF.backend);
    await runBackend(0);
    proxyContainer.startProxyContainer(DEFAULT_CADDY);
    runTunedCaddy("mmbench-caddy-tuned", 19005);
    runNginx("mmbench-npm", 19002, CONF.npm);
    runNginx("mmbench-static", 19003, CONF.static);
    proxyContainer.startProxyContainer(ENGINE_HAPROXY);
    for (const c of [DIRECT, ...CANDIDATES]) await answering(c.port);
});

afterAll(() => {
    cleanup();
    fs.rmSync(work, { recursive: true, force: true });
});

test("proxy candidates: throughput and churn, one run", async () => {
    const rounds = new Map<Candidate, ReturnType<typeof wrk>[]>([DIRECT, ...CANDIDATES].map((c) => [c, []]));
    for (let r = 0; r < ROUNDS; r++) for (const c of [DIRECT, ...CANDIDATES]) rounds.get(c)!.push(wrk(c.port));
    const throughput = new Map([...rounds].map(([c, rs]) => [c, [...rs].sort((a, b) => a.rps - b.rps)[Math.floor((rs.length - 1) / 2)]]));

    const loads = new Map([DIRECT, ...CANDIDATES].map((c) => [c, startLoad({ url: `http://127.0.0.1:${c.port}/`, host: HOST, workers: 2, timeoutMs: 20_000 })]));
    for (let n = 1; n <= CHURN; n++) {
        const old = engine.getContainer(BACKEND);
        await old.stop({ t: 10 });
        await old.remove();
        await runBackend(n);
        await new Promise((r) => setTimeout(r, 1500));
    }
    const churn = new Map<Candidate, LoadReport>();
    for (const [c, l] of loads) churn.set(c, await l.stop());

    // Reloads: every proxy in turn, under load on all paths at once; the backend stays up.
    await answering(DIRECT.port);
    const url = (c: Candidate) => `http://127.0.0.1:${c.port}/`;
    const reloadLoads = new Map(
        CANDIDATES.map((c) => [
            c,
            [
                startLoad({ url: url(c), host: HOST, workers: 2, retryOnReusedConnection: true }),
                startLoad({ url: url(c), host: HOST, workers: 1, keepAlive: false }),
            ],
        ]),
    );
    for (let n = 1; n <= RELOADS; n++) {
        for (const c of CANDIDATES) await reload(c, n);
        await new Promise((r) => setTimeout(r, 500));
    }
    const reloads = new Map<Candidate, LoadReport[]>();
    for (const [c, ls] of reloadLoads) reloads.set(c, await Promise.all(ls.map((l) => l.stop())));

    const direct = throughput.get(DIRECT)!.rps;
    out("");
    out(`Proxy candidates (wrk -t1 -c16 -d${DURATION}s, ${ROUNDS === 1 ? "one round" : `median of ${ROUNDS} interleaved rounds`}; churn: ${CHURN} backend recreations on new addresses under load, 2 workers per path), ${os.cpus().length} cores, one run`);
    out(`Reloads: ${RELOADS} configuration reloads per proxy, 500 ms apart, under a keep-alive client (2 workers, requests failed on a reused connection sent again) and a client opening a connection per request (1 worker, no retry)`);
    out(`| path | req/s | p50 | p99 | vs direct | churn: failed | churn: longest gap | reloads: failed | reloads: sent again |`);
    out(`|---|---:|---:|---:|---:|---:|---:|---:|---:|`);
    const failedOf = (r: { failures: LoadReport["failures"]; requests: number }) => {
        const kinds = new Map<string, number>();
        for (const f of r.failures) kinds.set(f.result, (kinds.get(f.result) ?? 0) + 1);
        return r.failures.length === 0 ? "0" : `${r.failures.length} of ${r.requests} (${[...kinds].map(([k, n]) => `${n}× ${k}`).join(", ")})`;
    };
    for (const c of [DIRECT, ...CANDIDATES]) {
        const t = throughput.get(c)!;
        const r = churn.get(c)!;
        const rl = reloads.get(c);
        const reloadCols = rl
            ? `${failedOf({ failures: rl.flatMap((x) => x.failures), requests: rl.reduce((a, x) => a + x.requests, 0) })} | ${rl.reduce((a, x) => a + x.retriedOnReusedConnection, 0)}`
            : "— | —";
        out(`| ${c.label} | ${t.rps.toFixed(0)} | ${t.p50} | ${t.p99} | ${(t.rps / direct).toFixed(2)}x | ${failedOf(r)} | ${(r.longestGapMs / 1000).toFixed(2)} s | ${reloadCols} |`);
    }
    const meets = CANDIDATES.filter(
        (c) => throughput.get(c)!.rps >= TARGET_RATIO * direct && churn.get(c)!.failures.length === 0 && reloads.get(c)!.every((r) => r.failures.length === 0),
    );
    out(`Meeting all three (>= ${TARGET_RATIO}x of direct, 0 failed under churn, 0 failed during reloads) in this run: ${meets.map((c) => c.label).join("; ") || "none"}`);
});
