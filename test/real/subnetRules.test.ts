/**
 * Subnet rules, confirmed on the real engine: every subnet the config refuses is tried with
 * `docker network create` (and containers on it), and each either fails on the engine or yields
 * a network that is broken or unsafe in the way the refusal names. The same value is then shown
 * to be refused by validation under the right key, before anything touches a host.
 */
import { spawnSync } from "child_process";
import * as pulumi from "@pulumi/pulumi";
import { parseStackConfig } from "../../components/config";
import { cidrsOverlap, DOCKER_DEFAULT_ADDRESS_POOLS } from "../../components/validators";
import { requirePrerequisites, TEST_IMAGE } from "../support/host";

const PREFIX = "mmtest-subnet";
let serial = 0;

function docker(args: string[], timeoutMs = 30_000): { ok: boolean; out: string } {
    const r = spawnSync("docker", args, { encoding: "utf8", timeout: timeoutMs });
    return { ok: r.status === 0, out: `${r.stdout ?? ""}${r.stderr ?? ""}`.trim() };
}

function removeOurs(): void {
    const containers = docker(["ps", "-aq", "--filter", `name=${PREFIX}`]).out.split("\n").filter(Boolean);
    if (containers.length) docker(["rm", "-f", ...containers]);
    for (const n of docker(["network", "ls", "--format", "{{.Name}}"]).out.split("\n")) if (n.startsWith(PREFIX)) docker(["network", "rm", n]);
}

/** `docker network create` with these subnets; the name, or the engine's error. */
function createNetwork(subnets: string[]): { name?: string; error?: string } {
    const name = `${PREFIX}-${++serial}`;
    const ipv6 = subnets.some((s) => s.includes(":")) ? ["--ipv6"] : [];
    const r = docker(["network", "create", ...ipv6, ...subnets.flatMap((s) => ["--subnet", s]), name]);
    return r.ok ? { name } : { error: r.out };
}

/** A server on the network and a client that fetches it by name; what the client got. */
function fetchByName(network: string, curlFlags: string[] = []): { started: boolean; out: string } {
    const server = `${network}-srv`;
    const s = docker(["run", "-d", "--name", server, "--network", network, "-e", "XDG_DATA_HOME=/tmp", "-e", "XDG_CONFIG_HOME=/tmp", TEST_IMAGE, "caddy", "respond", "--listen", ":8000", "ok"]);
    if (!s.ok) {
        docker(["rm", "-f", server]);
        return { started: false, out: s.out };
    }
    // Named with the prefix like everything here, so a killed run's containers can be found.
    const wait = docker(["run", "--rm", "--name", `${network}-wait`, "--network", network, TEST_IMAGE, "sh", "-c", "for i in $(seq 50); do getent hosts \"$1\" >/dev/null && break; sleep 0.1; done", "-", server]);
    const c = docker(["run", "--rm", "--name", `${network}-cli`, "--network", network, TEST_IMAGE, "curl", "-s", "-m", "3", ...curlFlags, "-w", " %{http_code}", `http://${server}:8000/`]);
    docker(["rm", "-f", server]);
    return { started: wait.ok, out: c.out };
}

/** Errors of validating a stack whose network has these keys (empty when accepted). */
function refusals(network: Record<string, unknown>): { propertyPath: string; reason: string }[] {
    try {
        parseStackConfig({ storage: { backend: "dir", root: "/srv/mmagent" }, network }, { stackName: "subnets", projectDir: "/p", hasSshPrivateKey: false });
        return [];
    } catch (e) {
        if (!pulumi.InputPropertiesError.isInstance(e)) throw e;
        return e.errors;
    }
}

beforeAll(() => {
    requirePrerequisites({ docker: true, image: true });
    removeOurs();
});
afterAll(removeOurs);

test("a good pair of subnets works: the control for every case below", () => {
    const net = createNetwork(["fd6d:6d61:6765:5e::/64", "172.16.94.0/24"]);
    expect(net.error).toBeUndefined();
    expect(fetchByName(net.name!).out).toBe("ok 200");
    expect(fetchByName(net.name!, ["-6"]).out).toBe("ok 200");
    expect(refusals({ ipv6Subnet: "fd6d:6d61:6765:5e::/64", ipv4Subnet: "172.16.94.0/24" })).toEqual([]);
});

// [config key, value, what the engine does with it]
const ENGINE_REFUSES: [string, string, string[], RegExp][] = [
    ["ipv4Subnet", "172.17.5.0/24", ["172.17.5.0/24"], /Pool overlaps/],
    ["ipv6Subnet", "::/120", ["::/120", "172.16.95.0/24"], /cannot assign requested address/],
    ["ipv6Subnet", "ff00::/64", ["ff00::/64", "172.16.95.0/24"], /cannot assign requested address/],
    ["ipv6Subnet", "::ffff:172.16.95.0/120", ["::ffff:172.16.95.0/120", "172.16.95.0/24"], /overlapping subnet|non-overlapping IPv6/],
    ["ipv6Subnet", "::ffff:10.9.0.0/120", ["::ffff:10.9.0.0/120", "172.16.95.0/24"], /overlapping subnet|non-overlapping IPv6/],
];
test.each(ENGINE_REFUSES)("%s %s: the engine fails to create the network; validation refuses it first", (key, value, subnets, engineError) => {
    const net = createNetwork(subnets);
    expect(net.error).toMatch(engineError);
    expect(refusals({ [key]: value }).map((e) => e.propertyPath)).toContain(`mmagent:network.${key}`);
});

test.each(["0.0.0.0/24", "224.0.0.0/24"])("ipv4Subnet %s: the engine creates the network, but no container on it starts; validation refuses it", (subnet) => {
    const net = createNetwork([subnet]);
    expect(net.error).toBeUndefined();
    const r = fetchByName(net.name!);
    expect(r.started).toBe(false);
    expect(r.out).toMatch(/route for the gateway .* could not be found|network is unreachable/);
    expect(refusals({ ipv4Subnet: subnet })[0]).toMatchObject({ propertyPath: "mmagent:network.ipv4Subnet", reason: expect.stringMatching(/no container on it starts/) });
});

test("ipv4Subnet 127.0.0.0/24: containers start, resolve each other, and reach only their own loopback; validation refuses it", () => {
    const net = createNetwork(["127.0.0.0/24"]);
    expect(net.error).toBeUndefined();
    const r = fetchByName(net.name!);
    expect(r.started).toBe(true);
    expect(r.out).not.toMatch(/200/);
    expect(refusals({ ipv4Subnet: "127.0.0.0/24" })[0].reason).toMatch(/their own loopback/);
});

test("ipv4Subnet 169.254.0.0/16: the bridge takes the host's link-local route (cloud metadata's 169.254.169.254); validation refuses it", () => {
    const net = createNetwork(["169.254.0.0/16"]);
    expect(net.error).toBeUndefined();
    const route = spawnSync("ip", ["route", "get", "169.254.169.254"], { encoding: "utf8" }).stdout;
    expect(route).toMatch(/dev br-/);
    expect(refusals({ ipv4Subnet: "169.254.0.0/16" })[0].reason).toMatch(/link-local routes/);
});

test("ipv6Subnet fe80::/64: names resolve to scope-less link-local addresses that IPv6 clients cannot reach; validation refuses it", () => {
    const net = createNetwork(["fe80::/64", "172.16.96.0/24"]);
    expect(net.error).toBeUndefined();
    expect(fetchByName(net.name!).out).toBe("ok 200"); // IPv4 still works …
    expect(fetchByName(net.name!, ["-6"]).out).not.toMatch(/200/); // … IPv6 does not
    expect(refusals({ ipv6Subnet: "fe80::/64" })[0].reason).toMatch(/IPv6 link-local/);
});

test("a subnet in Docker's default pools fails as soon as another network holds the pool (a Compose project, a plain `docker network create`); validation refuses it", () => {
    // What Compose does: a network without a subnet gets the next free pool.
    const auto = `${PREFIX}-auto`;
    expect(docker(["network", "create", auto]).ok).toBe(true);
    const held = docker(["network", "inspect", auto, "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}"]).out;
    expect(DOCKER_DEFAULT_ADDRESS_POOLS.some((p) => cidrsOverlap(held, p))).toBe(true);
    // A /24 at the start of that pool, as a stack would have configured it.
    const ours = held.replace(/\.0\.0\/(1[2-6])$/, ".0.0/24").replace(/\.(\d+)\.0\/20$/, ".$1.0/24");
    expect(ours).toMatch(/\/24$/);
    const net = createNetwork([ours]);
    expect(net.error).toMatch(/Pool overlaps with other one on this address space/);
    const problems = refusals({ ipv4Subnet: ours });
    expect(problems[0]).toMatchObject({ propertyPath: "mmagent:network.ipv4Subnet", reason: expect.stringMatching(/overlaps Docker's address pool/) });
});
