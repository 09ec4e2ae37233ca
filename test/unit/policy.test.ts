/**
 * The policy pack (policy/policies.ts), each policy called directly: one passing and one
 * failing example each. The project's own dev and prod stacks pass every policy: see
 * devStack.test.ts and prodStack.test.ts.
 */
import { proxyHaproxyConfig } from "../../components/reverseProxyNetwork";
import { COMMANDS, CONTAINER, RANDOM_PASSWORD, RESOURCE_POLICIES, STACK_POLICIES, VOLUME } from "../../policy/policies";
import { Props, runResourcePolicy, runStackPolicy } from "../support/policyHarness";

/** A container as the components declare one. */
const good = (): Props => ({
    name: "app",
    image: "redis:7.4.6-alpine",
    privileged: false,
    capabilities: { drops: ["ALL"], adds: ["CHOWN"] },
    securityOpts: ["no-new-privileges:true"],
    ports: [{ internal: 8080, external: 8080, ip: "127.0.0.1" }],
    mounts: [{ type: "volume", source: "app-data", target: "/data", readOnly: false }],
    envs: ["MODE=prod"],
    labels: [{ label: "mmagent.role", value: "agent" }],
});
const caddyUpload = (admin: object) => [{ file: "/etc/caddy/mmagent.json", content: JSON.stringify({ admin, apps: { http: { servers: {} } } }) }];

const RESOURCE_CASES: Record<string, { pass: [string, Props, object?]; fail: [string, Props, object?]; message: RegExp }> = {
    "no-privileged-containers": { pass: [CONTAINER, good()], fail: [CONTAINER, { ...good(), privileged: true }], message: /privileged is true/ },
    "no-docker-socket": {
        pass: [VOLUME, { name: "v", driverOpts: { type: "none", o: "bind", device: "/srv/mmagent/app-data" } }],
        fail: [CONTAINER, { ...good(), volumes: [{ hostPath: "/var/run/docker.sock", containerPath: "/var/run/docker.sock" }] }],
        message: /docker\.sock gives the container control/,
    },
    "admin-interfaces-on-loopback": {
        pass: [CONTAINER, { ...good(), uploads: caddyUpload({ listen: "127.0.0.1:2019" }) }],
        fail: [CONTAINER, { ...good(), uploads: caddyUpload({ listen: "0.0.0.0:2019" }) }],
        message: /admin API in \/etc\/caddy\/mmagent\.json listens on 0\.0\.0\.0:2019/,
    },
    "no-public-bind-without-consent": {
        pass: [CONTAINER, { ...good(), ports: [{ internal: 80, external: 80, ip: "0.0.0.0" }], labels: [{ label: "mmagent.allow-public-bind", value: "true" }] }],
        fail: [CONTAINER, { ...good(), ports: [{ internal: 80, external: 80, ip: "0.0.0.0" }] }],
        message: /port 80 is published on every interface .*allowPublicBind/,
    },
    "capabilities-dropped": {
        pass: [CONTAINER, good()],
        fail: [CONTAINER, { ...good(), capabilities: { drops: ["ALL"], adds: ["SYS_ADMIN"] } }],
        message: /capability SYS_ADMIN is added back/,
    },
    "no-new-privileges": { pass: [CONTAINER, good()], fail: [CONTAINER, { ...good(), securityOpts: [] }], message: /no-new-privileges/ },
    "images-pinned": {
        pass: [CONTAINER, { ...good(), image: "local/agent:latest" }, { allowLatest: true }],
        fail: [CONTAINER, { ...good(), image: "local/agent:latest" }, {}],
        message: /floats on "latest"/,
    },
};

test.each(RESOURCE_POLICIES.map((p) => [p.name, p] as const))("policy %s: passes the good example, refuses the bad one", (name, policy) => {
    const c = RESOURCE_CASES[name];
    expect(c).toBeDefined();
    expect(runResourcePolicy(policy, ...(c.pass as [string, Props, object?]))).toEqual([]);
    const violations = runResourcePolicy(policy, ...(c.fail as [string, Props, object?]));
    expect(violations).toEqual([expect.stringMatching(c.message)]);
});

test("images-pinned: no tag is refused even in dev; a digest or a version passes in prod", () => {
    const policy = RESOURCE_POLICIES.find((p) => p.name === "images-pinned")!;
    expect(runResourcePolicy(policy, CONTAINER, { ...good(), image: "ghcr.io/open-webui/open-webui" }, { allowLatest: true })).toEqual([expect.stringMatching(/no tag or digest/)]);
    expect(runResourcePolicy(policy, CONTAINER, { ...good(), image: `registry.example.com:5000/app@sha256:${"a".repeat(64)}` })).toEqual([]);
    expect(runResourcePolicy(policy, CONTAINER, { ...good(), image: "registry.example.com:5000/app:1.2" })).toEqual([]);
});

const STACK_CASES: Record<string, { pass: { type: string; props: Props }[]; fail: { type: string; props: Props }[]; message: RegExp }> = {
    "input-mounts-read-only": {
        pass: [
            { type: VOLUME, props: { name: "agent-input", labels: [{ label: "mmagent.access", value: "read-only" }] } },
            { type: CONTAINER, props: { ...good(), mounts: [{ type: "volume", source: "agent-input", target: "/input", readOnly: true }] } },
        ],
        fail: [
            { type: VOLUME, props: { name: "agent-input", labels: [{ label: "mmagent.access", value: "read-only" }] } },
            { type: CONTAINER, props: { ...good(), mounts: [{ type: "volume", source: "agent-input", target: "/input", readOnly: false }] } },
        ],
        message: /input volume agent-input is mounted writable at \/input/,
    },
    "secrets-not-plain-env": {
        pass: [
            { type: RANDOM_PASSWORD, props: { length: 32, result: "Gen3rated" } },
            { type: CONTAINER, props: { ...good(), envs: ["REDIS_URL=redis://:Gen3rated@cache:6379/0", "WEBUI_SECRET_KEY=Gen3rated", "MODE=prod"] } },
        ],
        fail: [
            { type: RANDOM_PASSWORD, props: { length: 32, result: "Gen3rated" } },
            { type: CONTAINER, props: { ...good(), envs: ["OPENAI_API_KEY=sk-literal-in-config"] } },
        ],
        message: /env OPENAI_API_KEY carries a literal secret/,
    },
};

test.each(STACK_POLICIES.map((p) => [p.name, p] as const))("stack policy %s: passes the good example, refuses the bad one", (name, policy) => {
    const c = STACK_CASES[name];
    expect(c).toBeDefined();
    expect(runStackPolicy(policy, c.pass)).toEqual([]);
    expect(runStackPolicy(policy, c.fail)).toEqual([expect.stringMatching(c.message)]);
});

test("admin-interfaces-on-loopback: the Caddy config a proxy config step carries in its triggers is checked too", () => {
    const policy = RESOURCE_POLICIES.find((p) => p.name === "admin-interfaces-on-loopback")!;
    const step = (admin: object) => ({ create: "sh", triggers: [{ admin, apps: { http: { servers: {} } } }] });
    for (const type of COMMANDS) {
        expect(runResourcePolicy(policy, type, step({ listen: "127.0.0.1:2019" }))).toEqual([]);
        expect(runResourcePolicy(policy, type, step({ disabled: true }))).toEqual([]);
        expect(runResourcePolicy(policy, type, step({ listen: "[::]:2019" }))).toEqual([expect.stringMatching(/admin API in triggers\[0\] listens on \[::\]:2019/)]);
    }
});

test("admin-interfaces-on-loopback: an HAProxy config (its lines in a config step's triggers) with the runtime API or statistics beyond loopback is refused", () => {
    const policy = RESOURCE_POLICIES.find((p) => p.name === "admin-interfaces-on-loopback")!;
    const step = (...extra: string[]) => ({ create: "sh", triggers: [["global", "  maxconn 4096", ...extra, "frontend routes", "  bind :8080", "  default_backend be_no_route"]] });
    for (const type of COMMANDS) {
        expect(runResourcePolicy(policy, type, step())).toEqual([]);
        expect(runResourcePolicy(policy, type, step("  stats socket /var/run/haproxy.sock mode 600 level admin"))).toEqual([]);
        expect(runResourcePolicy(policy, type, step("  stats socket ipv4@127.0.0.1:9999 level admin"))).toEqual([]);
        expect(runResourcePolicy(policy, type, step("  stats socket ipv4@0.0.0.0:9999 level admin"))).toEqual([expect.stringMatching(/HAProxy config in triggers\[0\] has "stats socket ipv4@0\.0\.0\.0:9999"/)]);
        expect(runResourcePolicy(policy, type, step("listen stats", "  bind 127.0.0.1:8404", "  stats enable"))).toEqual([]);
        expect(runResourcePolicy(policy, type, step("listen stats", "  bind :8404", "  stats enable", "  stats admin if TRUE"))).toEqual([expect.stringMatching(/serves statistics \("stats enable"\) in "listen stats" on :8404/)]);
    }
    // What the component generates passes.
    expect(runResourcePolicy(policy, COMMANDS[0], { create: "sh", triggers: [proxyHaproxyConfig({ routes: [{ host: "a.localhost", upstream: "a", port: 80 }], tls: "internal" }).split("\n")] })).toEqual([]);
});

test("secrets-not-plain-env: a password typed into a URL is caught too", () => {
    const policy = STACK_POLICIES.find((p) => p.name === "secrets-not-plain-env")!;
    expect(runStackPolicy(policy, [{ type: CONTAINER, props: { ...good(), envs: ["DB_URL=postgresql://postgres:hunter2@db:5432/postgres"] } }])).toEqual([
        expect.stringMatching(/env DB_URL carries a literal secret/),
    ]);
});

test("counts", () => {
    expect(Object.keys(RESOURCE_CASES).length + Object.keys(STACK_CASES).length).toBe(RESOURCE_POLICIES.length + STACK_POLICIES.length);
    console.log(`policies: ${RESOURCE_POLICIES.length + STACK_POLICIES.length} (${[...RESOURCE_POLICIES, ...STACK_POLICIES].map((p) => p.name).join(", ")}), each with a passing and a failing example`);
});
