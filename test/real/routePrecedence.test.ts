/**
 * Which backend each proxy engine answers for each Host and path, with the generated config
 * (components/caddyConfig.ts for the real Caddy, components/haproxyConfig.ts for the real
 * HAProxy) and routes listed in config in the worst order: the wildcard first. Exact host beats
 * wildcard, deeper wildcard beats shallower, a path route beats host-only, host names and paths
 * match whatever their case, a Host's port is ignored, and `*` stands for one label. Both
 * engines must give the same table: it is Caddy's behaviour, which the HAProxy config mirrors.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { buildCaddyConfig, ProxyRoute } from "../../components/caddyConfig";
import { buildHaproxyConfig } from "../../components/haproxyConfig";
import { HAPROXY_TEST_IMAGE, requirePrerequisites, sh, TEST_IMAGE } from "../support/host";

const NET = "mmtest_route_precedence";
/** Each engine's proxy container and published port. */
const ENGINES = [
    { engine: "caddy", proxy: "mmtest-rp-proxy", port: 18090 },
    { engine: "haproxy", proxy: "mmtest-rp-haproxy", port: 18092 },
] as const;
const BACKENDS = ["agent", "inference", "docs", "wildcard", "api"].map((b) => `mmtest-rp-${b}`);
const work = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-routes-"));

// In config order, adversarial: the broad wildcard first, the exact host after it.
const ROUTES: ProxyRoute[] = [
    { host: "*.localhost", upstream: "mmtest-rp-wildcard", port: 4000 },
    { host: "agent.localhost", upstream: "mmtest-rp-agent", port: 4000 },
    { host: "*.api.localhost", upstream: "mmtest-rp-api", port: 4000 },
    { host: "agent.localhost", upstream: "mmtest-rp-inference", port: 4000, path: "/ollama/*" },
    { host: "*.localhost", upstream: "mmtest-rp-docs", port: 4000, path: "/docs/*" },
];

const TABLE: [host: string, urlPath: string, backend: string][] = [
    ["agent.localhost", "/", "agent"],
    ["AGENT.LocalHost", "/", "agent"],
    ["agent.localhost", "/ollama/api/tags", "inference"],
    ["Agent.localhost", "/ollama/api/tags", "inference"],
    // The exact host wins over the wildcard's path route too.
    ["agent.localhost", "/docs/x", "agent"],
    ["other.localhost", "/", "wildcard"],
    ["OTHER.localhost", "/", "wildcard"],
    ["other.localhost", "/docs/x", "docs"],
    ["x.api.localhost", "/", "api"],
    ["x.api.localhost", "/docs/x", "api"],
    ["agent.example.com", "/", "(none)"],
    // Paths case-insensitively and percent-decoded; the Host's port ignored; `*` is one label.
    ["other.localhost", "/DOCS/x", "docs"],
    ["other.localhost", "/%64ocs/x", "docs"],
    ["agent.localhost:18090", "/ollama/x", "inference"],
    ["a.b.localhost", "/", "(none)"],
];

function cleanup() {
    spawnSync("docker", ["rm", "-f", ...ENGINES.map((e) => e.proxy), ...BACKENDS]);
    spawnSync("docker", ["network", "rm", NET]);
}

/** A backend that answers every path with its own name. */
function startBackend(name: string) {
    const config = { admin: { disabled: true }, apps: { http: { servers: { s: { listen: [":4000"], routes: [{ handle: [{ handler: "static_response", body: name.replace("mmtest-rp-", "") }] }] } } } } };
    sh("docker", ["run", "-d", "--name", name, "--network", NET, TEST_IMAGE, "sh", "-c", `printf '%s' '${JSON.stringify(config)}' >/tmp/c.json && exec caddy run --config /tmp/c.json`]);
}

function ask(port: number, host: string, urlPath: string): { status: string; body: string } {
    const r = spawnSync("curl", ["-s", "--path-as-is", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}", "-H", `Host: ${host}`, `http://127.0.0.1:${port}${urlPath}`], { encoding: "utf8" });
    const lines = r.stdout.split("\n");
    return { status: lines.pop() ?? "", body: lines.join("\n").trim() };
}

beforeAll(async () => {
    requirePrerequisites({ commands: ["curl"], docker: true, image: true });
    cleanup();
    sh("docker", ["network", "create", "--driver", "bridge", "--subnet", "172.16.98.0/24", NET]);
    for (const b of BACKENDS) startBackend(b);
    const caddy = buildCaddyConfig({ routes: ROUTES, httpPort: ENGINES[0].port, httpsPort: ENGINES[0].port + 1, tls: "off", adminApi: "off", healthPort: 2020, adminPort: 2019, storageRoot: "/tmp/caddy" });
    fs.writeFileSync(path.join(work, "caddy.json"), JSON.stringify(caddy));
    // Readable by the HAProxy image's unprivileged user (mkdtemp makes the directory 0700).
    fs.chmodSync(work, 0o755);
    fs.writeFileSync(path.join(work, "haproxy.cfg"), buildHaproxyConfig({ routes: ROUTES, httpPort: ENGINES[1].port, tls: "off", httpsPort: 443, certDir: "/unused", healthPort: 2020, holdPort: 2021 }));
    const run = (e: (typeof ENGINES)[number], image: string, command: string[]) =>
        sh("docker", ["run", "-d", "--name", e.proxy, "--network", NET, "-p", `127.0.0.1:${e.port}:${e.port}`, "-v", `${work}:/etc/mmtest:ro`, image, ...command]);
    run(ENGINES[0], TEST_IMAGE, ["caddy", "run", "--config", "/etc/mmtest/caddy.json"]);
    run(ENGINES[1], HAPROXY_TEST_IMAGE, ["haproxy", "-W", "-db", "-f", "/etc/mmtest/haproxy.cfg"]);
    // Every backend answers through each proxy before the table runs.
    for (const { port } of ENGINES) {
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline && !(ask(port, "agent.localhost", "/").body === "agent" && ask(port, "x.api.localhost", "/").body === "api" && ask(port, "other.localhost", "/docs/").body === "docs")) {
            await new Promise((r) => setTimeout(r, 250));
        }
    }
}, 90_000);

afterAll(() => {
    cleanup();
    fs.rmSync(work, { recursive: true, force: true });
});

test.each(ENGINES)("$engine: each Host/path is answered by the backend the precedence rules name", ({ engine, port }) => {
    const got = TABLE.map(([host, urlPath]) => {
        const r = ask(port, host, urlPath);
        // No route: Caddy answers an empty 200, the HAProxy config a 404.
        return [host, urlPath, r.status === "200" && r.body !== "" ? r.body : "(none)"];
    });
    expect(got).toEqual(TABLE);
    console.log(`route precedence on the real ${engine}: ${TABLE.length} Host/path cases, routes listed wildcard-first in config`);
});
