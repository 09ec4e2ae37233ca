/**
 * ReverseProxyNetwork on a real Docker engine: the network as the component declares it, the
 * generated Caddy config validated by the real caddy binary and served by a real Caddy (from
 * the Debian test image) created from the component's exact container args, backends by name.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { proxyCaddyConfig } from "../../components/reverseProxyNetwork";
import { requirePrerequisites, sh, TEST_IMAGE } from "../support/host";
import { ProxyTestArgs, removeProxyContainer, startProxyContainer } from "../support/proxyContainer";

const NET = "mmtest_reverse_proxy";
const V6 = "fd6d:6d61:6765:99::/64";
const V4 = "172.16.99.0/24";
const PORT = 18080;
const PROXY = "mmtest-proxy";
const BACKENDS = ["mmtest-agent", "mmtest-files"];
const work = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-proxy-"));

const args: ProxyTestArgs = {
    networkName: NET,
    containerName: PROXY,
    httpPort: PORT,
    tls: "off",
    adminApi: "loopback",
    routes: [
        { host: "agent.localhost", upstream: "mmtest-agent", port: 4000 },
        { host: "files.localhost", upstream: "mmtest-files", port: 4000 },
    ],
    dataVolumeName: "mmtest-proxy-data",
};

function cleanup() {
    removeProxyContainer(PROXY);
    spawnSync("docker", ["rm", "-f", ...BACKENDS, "mmtest-filler", "mmtest-client"]);
    spawnSync("docker", ["network", "rm", NET]);
    spawnSync("docker", ["volume", "rm", "mmtest-proxy-data"]);
}

function startBackend(name: string, body: string) {
    sh("docker", ["run", "-d", "--name", name, "--network", NET, TEST_IMAGE, "sh", "-c", `mkdir -p /srv && echo ${body} > /srv/index.html && exec caddy file-server --listen :4000 --root /srv`]);
}

function ipOf(name: string): string {
    return sh("docker", ["inspect", "-f", `{{(index .NetworkSettings.Networks "${NET}").IPAddress}}`, name]).trim();
}

async function through(host: string, timeoutMs = 20_000): Promise<{ status: string; body: string }> {
    const deadline = Date.now() + timeoutMs;
    let last = { status: "", body: "" };
    while (Date.now() < deadline) {
        const r = spawnSync("curl", ["-s", "-o", "-", "-w", "\n%{http_code}", "-H", `Host: ${host}`, `http://127.0.0.1:${PORT}/`], { encoding: "utf8" });
        const lines = r.stdout.trim().split("\n");
        last = { status: lines.pop() ?? "", body: lines.join("\n").trim() };
        if (last.status === "200") return last;
        await new Promise((res) => setTimeout(res, 250));
    }
    return last;
}

beforeAll(async () => {
    requirePrerequisites({ commands: ["curl"], docker: true, image: true });
    cleanup();
    // The network, as ReverseProxyNetwork declares it.
    sh("docker", ["network", "create", "--driver", "bridge", "--ipv6", "--subnet", V6, "--subnet", V4, NET]);
    sh("docker", ["volume", "create", "mmtest-proxy-data"]);
    for (const b of BACKENDS) startBackend(b, b.replace("mmtest-", ""));

    // The proxy, from the component's exact container args (command, caps, security opts, healthcheck, volumes), its config written by the host script.
    startProxyContainer(args);
}, 60_000);

afterAll(() => {
    cleanup();
    fs.rmSync(work, { recursive: true, force: true });
});

test("the network exists exactly as declared: IPv6 on, both subnets", () => {
    const net = JSON.parse(sh("docker", ["network", "inspect", NET]))[0];
    expect(net.EnableIPv6).toBe(true);
    expect(net.Driver).toBe("bridge");
    expect(net.IPAM.Config.map((c: any) => c.Subnet).sort()).toEqual([V4, V6].sort());
});

test("the generated config passes `caddy validate` of the real binary (and a broken one does not)", () => {
    const validate = (config: unknown) => {
        const file = path.join(work, `validate-${Math.random().toString(36).slice(2)}.json`);
        fs.writeFileSync(file, JSON.stringify(config));
        return spawnSync("docker", ["run", "--rm", "--name", `mmtest-${path.basename(file, ".json")}`, "-v", `${file}:/c.json:ro`, TEST_IMAGE, "caddy", "validate", "--config", "/c.json"], { encoding: "utf8" });
    };
    for (const tls of ["internal", "off"] as const) {
        const ok = validate(proxyCaddyConfig({ ...args, tls, httpsPort: 18443 }));
        expect({ tls, status: ok.status, err: ok.status === 0 ? "" : ok.stderr.slice(-300) }).toEqual({ tls, status: 0, err: "" });
    }
    const broken = proxyCaddyConfig(args) as any;
    broken.apps.http.servers.routes.routes[0].handle[0].handler = "no_such_handler";
    const bad = validate(broken);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/no_such_handler/);
});

test("the proxy becomes healthy and each Host reaches its backend", async () => {
    const deadline = Date.now() + 30_000;
    let health = "";
    while (Date.now() < deadline && health !== "healthy") {
        health = sh("docker", ["inspect", "-f", "{{.State.Health.Status}}", PROXY]).trim();
        await new Promise((r) => setTimeout(r, 500));
    }
    expect(health).toBe("healthy");
    expect(await through("agent.localhost")).toEqual({ status: "200", body: "agent" });
    expect(await through("files.localhost")).toEqual({ status: "200", body: "files" });
}, 60_000);

test("Docker's DNS answers a backend's name with an IPv4 and an IPv6 address", () => {
    const out = sh("docker", ["exec", "mmtest-agent", "getent", "ahosts", "mmtest-files"]);
    const addrs = [...new Set(out.trim().split("\n").map((l) => l.split(/\s+/)[0]))];
    expect(addrs.some((a) => /^172\.16\.99\.\d+$/.test(a))).toBe(true);
    expect(addrs.some((a) => a.startsWith("fd6d:6d61:6765:99:"))).toBe(true);
});

test("a backend recreated with a new IP is reached again without touching the proxy", async () => {
    const before = ipOf("mmtest-agent");
    const proxyStarted = sh("docker", ["inspect", "-f", "{{.State.StartedAt}}", PROXY]).trim();
    sh("docker", ["rm", "-f", "mmtest-agent"]);
    // Take the old address so the new container cannot get it back.
    sh("docker", ["run", "-d", "--name", "mmtest-filler", "--network", NET, "--ip", before, TEST_IMAGE, "sleep", "300"]);
    startBackend("mmtest-agent", "agent-v2");
    const after = ipOf("mmtest-agent");
    expect(after).not.toBe(before);
    expect(await through("agent.localhost")).toEqual({ status: "200", body: "agent-v2" });
    expect(sh("docker", ["inspect", "-f", "{{.State.StartedAt}}", PROXY]).trim()).toBe(proxyStarted);
}, 60_000);

test("the admin API answers only on the proxy's own loopback and is not published", () => {
    const inside = spawnSync("docker", ["exec", PROXY, "curl", "-sf", "http://127.0.0.1:2019/config/"], { encoding: "utf8" });
    expect(inside.status).toBe(0);
    expect(JSON.parse(inside.stdout).apps.http.servers.routes.listen).toEqual([`:${PORT}`]);
    const fromPeer = spawnSync("docker", ["run", "--rm", "--name", "mmtest-client", "--network", NET, TEST_IMAGE, "curl", "-s", "--max-time", "5", `http://${PROXY}:2019/config/`], { encoding: "utf8" });
    expect(fromPeer.status).not.toBe(0);
    expect(sh("docker", ["port", PROXY]).trim()).toBe(`${PORT}/tcp -> 127.0.0.1:${PORT}`);
});

test("the proxy runs with every capability dropped and no-new-privileges", () => {
    const inspect = JSON.parse(sh("docker", ["inspect", PROXY]))[0];
    expect(inspect.HostConfig.CapDrop).toEqual(["ALL"]);
    expect(inspect.HostConfig.SecurityOpt).toEqual(["no-new-privileges:true"]);
    expect(inspect.HostConfig.Privileged).toBe(false);
});
