/**
 * Which backend the real Caddy answers for each Host and path, with the generated config
 * (components/caddyConfig.ts) and routes listed in config in the worst order: the wildcard
 * first. Exact host beats wildcard, deeper wildcard beats shallower, a path route beats
 * host-only, and host names match whatever their case.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { buildCaddyConfig, ProxyRoute } from "../../components/caddyConfig";
import { requirePrerequisites, sh, TEST_IMAGE } from "../support/host";

const NET = "mmtest_route_precedence";
const PORT = 18090;
const PROXY = "mmtest-rp-proxy";
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
];

function cleanup() {
    spawnSync("docker", ["rm", "-f", PROXY, ...BACKENDS]);
    spawnSync("docker", ["network", "rm", NET]);
}

/** A backend that answers every path with its own name. */
function startBackend(name: string) {
    const config = { admin: { disabled: true }, apps: { http: { servers: { s: { listen: [":4000"], routes: [{ handle: [{ handler: "static_response", body: name.replace("mmtest-rp-", "") }] }] } } } } };
    sh("docker", ["run", "-d", "--name", name, "--network", NET, TEST_IMAGE, "sh", "-c", `printf '%s' '${JSON.stringify(config)}' >/tmp/c.json && exec caddy run --config /tmp/c.json`]);
}

function ask(host: string, urlPath: string): { status: string; body: string } {
    const r = spawnSync("curl", ["-s", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}", "-H", `Host: ${host}`, `http://127.0.0.1:${PORT}${urlPath}`], { encoding: "utf8" });
    const lines = r.stdout.split("\n");
    return { status: lines.pop() ?? "", body: lines.join("\n").trim() };
}

beforeAll(async () => {
    requirePrerequisites({ commands: ["curl"], docker: true, image: true });
    cleanup();
    sh("docker", ["network", "create", "--driver", "bridge", "--subnet", "172.16.98.0/24", NET]);
    for (const b of BACKENDS) startBackend(b);
    const config = buildCaddyConfig({ routes: ROUTES, httpPort: PORT, httpsPort: PORT + 1, tls: "off", adminApi: "off", healthPort: 2020, adminPort: 2019, storageRoot: "/tmp/caddy" });
    fs.writeFileSync(path.join(work, "caddy.json"), JSON.stringify(config));
    sh("docker", ["run", "-d", "--name", PROXY, "--network", NET, "-p", `127.0.0.1:${PORT}:${PORT}`, "-v", `${work}:/etc/mmtest:ro`, TEST_IMAGE, "caddy", "run", "--config", "/etc/mmtest/caddy.json"]);
    // Every backend answers through the proxy before the table runs.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !(ask("agent.localhost", "/").body === "agent" && ask("x.api.localhost", "/").body === "api" && ask("other.localhost", "/docs/").body === "docs")) {
        await new Promise((r) => setTimeout(r, 250));
    }
}, 90_000);

afterAll(() => {
    cleanup();
    fs.rmSync(work, { recursive: true, force: true });
});

test("each Host/path is answered by the backend the precedence rules name", () => {
    const got = TABLE.map(([host, urlPath]) => {
        const r = ask(host, urlPath);
        // Caddy answers a request no route matches with an empty 200.
        return [host, urlPath, r.status === "200" && r.body !== "" ? r.body : "(none)"];
    });
    expect(got).toEqual(TABLE);
    console.log(`route precedence on the real Caddy: ${TABLE.length} Host/path cases, routes listed wildcard-first in config`);
});
