/**
 * Proxy candidates side by side, in one run: throughput (wrk -t1 -c16 on 127.0.0.1) and churn
 * (the backend recreated CHURN times on a new IPv4/IPv6 address, the way the docker provider
 * replaces a fixed-name container, while bounded load runs through every path at once).
 *   - direct: the backend's own published port (the reference; during churn it is down while
 *     it is recreated);
 *   - Caddy exactly as ReverseProxyNetwork declares it (generated config, container args and
 *     neighbour sysctls: test/support/proxyContainer.ts);
 *   - nginx as nginx-proxy-manager configures it (resolver 127.0.0.11 + a variable in proxy_pass);
 *   - nginx with a static upstream + keepalive (resolves once, at start);
 *   - HAProxy (Debian's 2.6) with a resolvers section on Docker's DNS and connection retries.
 * Run with `bash bench/proxy.sh` (builds the HAProxy image, then this).
 */
import { spawnSync } from "child_process";
import Docker from "dockerode";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PROXY_SYSCTLS } from "../components/reverseProxyNetwork";
import { requirePrerequisites, sh, TEST_IMAGE } from "../test/support/host";
import { LoadReport, startLoad } from "../test/support/load";
import { startProxyContainer } from "../test/support/proxyContainer";

jest.setTimeout(900_000);
const DURATION = Number(process.env.DURATION ?? 5);
const CHURN = Number(process.env.CHURN ?? 10);
const HAPROXY_IMAGE = process.env.HAPROXY_IMAGE ?? "local/mmagent-bench-haproxy:1";
const NET = "mmbench_net";
const V6 = "fd6d:6d61:6765:98::";
const V4 = "172.16.98.";
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
    { label: "Caddy, generated config (default)", port: 19001, container: "mmbench-caddy" },
    { label: "nginx, NPM-style resolver + variable", port: 19002, container: "mmbench-npm" },
    { label: "nginx, static upstream + keepalive", port: 19003, container: "mmbench-static" },
    { label: "HAProxy 2.6, resolvers + retries", port: 19004, container: "mmbench-haproxy" },
];

const nginxConf = (server: string) => `worker_processes 1; error_log stderr; pid /tmp/nginx.pid;\nevents { worker_connections 1024; }\nhttp { access_log off; ${server} }\n`;
const CONF = {
    backend: nginxConf('server { listen 8000; listen [::]:8000; location / { return 200 "ok\\n"; } }'),
    npm: nginxConf(`server { listen 8000; resolver 127.0.0.11 valid=10s; set $upstream http://${BACKEND}:8000; location / { proxy_pass $upstream; proxy_http_version 1.1; proxy_set_header Host $host; } }`),
    static: nginxConf(`upstream be { server ${BACKEND}:8000; keepalive 16; } server { listen 8000; location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } }`),
    // Re-resolve every 100 ms; keep the last address while the name is gone (the backend is being
    // recreated) so requests are retried instead of answered 503; a connect that has not
    // succeeded in 100 ms is retried, up to 150 times (15 s, as Caddy's try_duration).
    haproxy: [
        "global", "  maxconn 4096", "  nbthread 1",
        "defaults", "  mode http", "  timeout connect 100ms", "  timeout client 30s", "  timeout server 30s",
        "  retries 150", "  retry-on conn-failure empty-response response-timeout", "  option http-keep-alive", "  http-reuse safe",
        "resolvers docker", "  nameserver dns 127.0.0.11:53", "  timeout resolve 100ms", "  timeout retry 100ms",
        "  hold valid 100ms", "  hold nx 15s", "  hold obsolete 15s", "  hold refused 15s", "  hold timeout 15s",
        "frontend fe", "  bind :8000", "  default_backend be",
        "backend be", `  server s1 ${BACKEND}:8000 resolvers docker init-addr last,libc,none resolve-prefer ipv4`,
        "",
    ].join("\n"),
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

function cleanup() {
    spawnSync("docker", ["rm", "-f", BACKEND, ...CANDIDATES.map((c) => c.container!)]);
    spawnSync("docker", ["network", "rm", NET]);
    spawnSync("docker", ["volume", "rm", "mmbench-caddy-data"]);
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
    startProxyContainer({ containerName: "mmbench-caddy", networkName: NET, httpPort: 19001, tls: "off", routes: [{ host: HOST, upstream: BACKEND, port: 8000 }], dataVolumeName: "mmbench-caddy-data" });
    runNginx("mmbench-npm", 19002, CONF.npm);
    runNginx("mmbench-static", 19003, CONF.static);
    sh("docker", [
        "run", "-d", "--name", "mmbench-haproxy", "--network", NET, "-p", "127.0.0.1:19004:8000",
        // The same neighbour-cache tuning as the default proxy, so the comparison is of the proxies.
        ...Object.entries(PROXY_SYSCTLS).flatMap(([k, v]) => ["--sysctl", `${k}=${v}`]),
        "-v", `${file("haproxy.cfg", CONF.haproxy)}:/etc/haproxy/bench.cfg:ro`, HAPROXY_IMAGE, "haproxy", "-f", "/etc/haproxy/bench.cfg",
    ]);
    for (const c of [DIRECT, ...CANDIDATES]) await answering(c.port);
});

afterAll(() => {
    cleanup();
    fs.rmSync(work, { recursive: true, force: true });
});

test("proxy candidates: throughput and churn, one run", async () => {
    const throughput = new Map<Candidate, ReturnType<typeof wrk>>();
    for (const c of [DIRECT, ...CANDIDATES]) throughput.set(c, wrk(c.port));

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

    const direct = throughput.get(DIRECT)!.rps;
    out("");
    out(`Proxy candidates (wrk -t1 -c16 -d${DURATION}s; churn: ${CHURN} backend recreations on new addresses under load, 2 workers per path), ${os.cpus().length} cores, one run`);
    out(`| path | req/s | p50 | p99 | vs direct | churn: failed | churn: longest gap |`);
    out(`|---|---:|---:|---:|---:|---:|---:|`);
    for (const c of [DIRECT, ...CANDIDATES]) {
        const t = throughput.get(c)!;
        const r = churn.get(c)!;
        const kinds = new Map<string, number>();
        for (const f of r.failures) kinds.set(f.result, (kinds.get(f.result) ?? 0) + 1);
        const failed = r.failures.length === 0 ? "0" : `${r.failures.length} of ${r.requests} (${[...kinds].map(([k, n]) => `${n}× ${k}`).join(", ")})`;
        out(`| ${c.label} | ${t.rps.toFixed(0)} | ${t.p50} | ${t.p99} | ${(t.rps / direct).toFixed(2)}x | ${failed} | ${(r.longestGapMs / 1000).toFixed(2)} s |`);
    }
});
