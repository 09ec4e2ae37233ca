/**
 * What a `pulumi preview --diff` of a config change would show, computed under mocks: the real
 * program (index.ts) with the real Pulumi.dev.yaml and Pulumi.prod.yaml, evaluated in a fresh
 * module registry each time (test/support/footprint.ts), and two evaluations compared by their
 * registered resource inputs, serialized deterministically (object keys sorted; arrays and strings
 * byte for byte).
 *
 *  (a) the same config evaluated twice registers byte-identical resources, even with the clock
 *      years ahead and another working directory on the second run (no time, order, random or
 *      cwd leaks: an empty preview stays empty);
 *  (b) the change footprint of an image change: exactly the service's change id, its pre-change
 *      snapshot step and its container (the dev stack's backend is auto, so its snapshot steps are
 *      declared whatever the host turns out to be; the dir backend would touch the container only);
 *  (c) the footprint of a route change, as one table entry (ROUTE_CHANGE_TOUCHES) to update when
 *      the program changes where routes live.
 *
 * The prod stack runs with its own `namePrefix`: the program writes the SSH key for the Docker
 * provider into ~/.mmagent/ssh/<project>.<stack>.<prefix>-host, and prodStack.test.ts, which may
 * run at the same time, owns the directory of the prefix "prod".
 */
import * as os from "os";
import * as path from "path";
import { Change, evaluateFresh, evaluationText, ExpectedChange, expectedFootprint, footprint, recordText } from "../support/footprint";
import { removeSshClientDir } from "../support/host";
import type { MockRun, RunOptions } from "../support/mockProgram";
import { stackFileConfig } from "../support/mockProgram";

jest.setTimeout(120_000);

const CONTAINER = "docker:index/container:Container";
const CHANGE_ID = "random:index/randomId:RandomId";

const PROD_PREFIX = "fp-prod";
const SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nfootprint-test-key\n-----END OPENSSH PRIVATE KEY-----";
const PROD_SSH_DIR = path.join(os.userInfo().homedir, `.mmagent/ssh/mmagent.prod.${PROD_PREFIX}-host`);

/** The structured config keys of a stack file, parsed; a change edits them in place. */
type StackObjects = Record<"host" | "storage" | "network" | "proxy" | "services", any>;

interface StackCase {
    stack: "dev" | "prod";
    prefix: string;
    /** The resource type of a host step on this stack. */
    hostCommand: string;
    /** Whether the storage backend takes pre-change snapshots. */
    snapshots: boolean;
    extraConfig: Record<string, string>;
    secretKeys: string[];
}

const STACKS: Record<"dev" | "prod", StackCase> = {
    dev: { stack: "dev", prefix: "dev", hostCommand: "command:local:Command", snapshots: true, extraConfig: {}, secretKeys: [] },
    prod: {
        stack: "prod",
        prefix: PROD_PREFIX,
        hostCommand: "command:remote:Command",
        snapshots: true,
        extraConfig: { "mmagent:namePrefix": PROD_PREFIX, "mmagent:sshPrivateKey": SSH_KEY },
        secretKeys: ["mmagent:sshPrivateKey"],
    },
};

function options(s: StackCase, change?: (c: StackObjects) => void): RunOptions {
    const file = stackFileConfig(s.stack);
    const objects = {} as StackObjects;
    for (const key of ["host", "storage", "network", "proxy", "services"] as const) {
        objects[key] = file[`mmagent:${key}`] === undefined ? {} : JSON.parse(file[`mmagent:${key}`]);
    }
    change?.(objects);
    const config: Record<string, string> = { ...s.extraConfig };
    for (const [key, value] of Object.entries(objects)) config[`mmagent:${key}`] = JSON.stringify(value);
    return { stack: s.stack, config, secretKeys: s.secretKeys };
}

const evaluate = (s: StackCase, change?: (c: StackObjects) => void) => evaluateFresh(options(s, change));

/** Evaluates with the clock ten years ahead and another working directory. */
async function evaluatePerturbed(s: StackCase): Promise<MockRun> {
    const cwd = process.cwd();
    const realNow = Date.now();
    jest.useFakeTimers({
        now: realNow + 10 * 365 * 24 * 3600 * 1000,
        // Only the clock: the SDK and the harness need real timers and ticks.
        doNotFake: ["hrtime", "nextTick", "performance", "queueMicrotask", "setImmediate", "clearImmediate", "setInterval", "clearInterval", "setTimeout", "clearTimeout"],
    });
    process.chdir(os.tmpdir());
    try {
        expect(new Date().getUTCFullYear()).toBeGreaterThan(new Date(realNow).getUTCFullYear() + 9);
        return await evaluate(s);
    } finally {
        process.chdir(cwd);
        jest.useRealTimers();
    }
}

const base: Partial<Record<"dev" | "prod", MockRun>> = {};
async function baseline(s: StackCase): Promise<MockRun> {
    return (base[s.stack] ??= await evaluate(s));
}

// Each fresh SDK adds its own process exit listeners (about 20 evaluations here).
const maxListeners = process.getMaxListeners();
beforeAll(() => {
    process.setMaxListeners(maxListeners + 40);
    removeSshClientDir(PROD_SSH_DIR);
});
afterAll(() => {
    removeSshClientDir(PROD_SSH_DIR);
    process.setMaxListeners(maxListeners);
});

/** A footprint as `expect` shows it best: one `<urn> <inputs>` line per changed resource. */
const lines = (changes: Change[]) => changes.map((c) => `${c.urn} ${c.inputs.join(",")}`);

function expectFootprint(before: MockRun, after: MockRun, expected: ExpectedChange[]): void {
    const actual = footprint(before, after);
    expect(lines(actual)).toEqual(lines(expectedFootprint(expected, before, after, actual)));
}

// (a) -------------------------------------------------------------------------------------------

describe.each(["dev", "prod"] as const)("(a) the %s stack evaluated twice", (stack) => {
    test("registers byte-identical resources (inputs, secrecy, parents, dependencies, options)", async () => {
        const s = STACKS[stack];
        const first = await baseline(s);
        const second = await evaluatePerturbed(s);
        expect(first.resources.length).toBeGreaterThan(20);
        // Which records differ, readable; then the whole serialization, byte for byte.
        const texts = new Map(first.resources.map((r) => [r.urn, recordText(r)]));
        expect(second.resources.filter((r) => texts.get(r.urn) !== recordText(r)).map((r) => r.urn)).toEqual([]);
        expect(second.resources.map((r) => r.urn).sort()).toEqual(first.resources.map((r) => r.urn).sort());
        expect(evaluationText(second) === evaluationText(first)).toBe(true);
        expect(footprint(first, second)).toEqual([]);
    });
});

// (b) -------------------------------------------------------------------------------------------

/**
 * A new tag for each role (`services.<role>.image`), one at a time. The proxy's image
 * (`proxy.image`) is not a service: its footprint depends on where routes live (see (c)).
 */
const IMAGE_CHANGES: Array<{ role: string; container: string; resource: string; image: string }> = [
    { role: "inference", container: "inference", resource: "agents-inference", image: "ollama/ollama:0.12.7" },
    { role: "agent", container: "agent", resource: "agents-agent", image: "ghcr.io/open-webui/open-webui:v0.6.35" },
    { role: "cache", container: "cache", resource: "agents-cache", image: "redis:7.4.7-alpine" },
    { role: "vectorDb", container: "vector-db", resource: "agents-vector-db", image: "pgvector/pgvector:0.8.2-pg17" },
];

/** What an image change of one role touches: its change id, its pre-change snapshot and its container. */
function imageChangeTouches(s: StackCase, c: (typeof IMAGE_CHANGES)[number]): ExpectedChange[] {
    const containerName = `${s.prefix}-${c.container}`;
    return [
        ...(s.snapshots
            ? [
                  // keepers: {image} — a new id, so a new snapshot name.
                  { type: CHANGE_ID, name: `${s.prefix}-storage-${containerName}-change`, inputs: ["keepers"] },
                  // stdin carries the image about to run (MMAGENT_NEXT_IMAGE); triggers[0] is the image.
                  { type: s.hostCommand, name: `${s.prefix}-storage-${containerName}-pre-change`, inputs: ["stdin", "triggers"] },
              ]
            : []),
        { type: CONTAINER, name: `${s.prefix}-${c.resource}`, inputs: ["image"] },
    ];
}

describe("(b) change footprint", () => {
    const rows: Array<[string, StackCase, ((c: StackObjects) => void) | undefined, (s: StackCase) => ExpectedChange[]]> = [];
    for (const s of [STACKS.dev, STACKS.prod]) {
        rows.push([`${s.stack}: unchanged config`, s, undefined, () => []]);
        for (const c of IMAGE_CHANGES) {
            if (s.stack === "dev" && c.role === "vectorDb") continue; // disabled in Pulumi.dev.yaml
            rows.push([
                `${s.stack}: services.${c.role}.image -> ${c.image}`,
                s,
                (o) => {
                    o.services[c.role] = { ...o.services[c.role], image: c.image };
                },
                (st) => imageChangeTouches(st, c),
            ]);
        }
    }

    test.each(rows)("%s", async (_title, s, change, expected) => {
        const before = await baseline(s);
        const after = await evaluate(s, change);
        expectFootprint(before, after, expected(s));
    });
});

// (c) -------------------------------------------------------------------------------------------

/**
 * What a route change (a new `proxy.routes` entry, or a service's `host`) touches, and nothing
 * else: the proxy's config step (its stdin carries the config, its triggers the same config as
 * data for the preview) and, where the proxy holds the certificates (dev: engine haproxy, tls
 * internal), the key, request and certificate of each host that comes or goes. The proxy container
 * keeps its inputs, so it is neither replaced nor restarted: the step loads the new routes and
 * certificates into it (components/scripts/proxy-config.sh).
 */
const ROUTE_CHANGE_TOUCHES = (s: StackCase, hostsComeOrGo: string[]): ExpectedChange[] => [
    { type: s.hostCommand, name: `${s.prefix}-edge-routes`, inputs: ["stdin", "triggers"] },
    ...hostsComeOrGo.flatMap((host) => [
        { type: "tls:index/privateKey:PrivateKey", name: `${s.prefix}-edge-cert-${host}-key` },
        { type: "tls:index/certRequest:CertRequest", name: `${s.prefix}-edge-cert-${host}-request` },
        { type: "tls:index/locallySignedCert:LocallySignedCert", name: `${s.prefix}-edge-cert-${host}` },
    ]),
];

describe("(c) route change footprint", () => {
    const rows: Array<[string, StackCase, (c: StackObjects) => void, string[]]> = [
        ["dev: a proxy.routes entry added", STACKS.dev, (o) => (o.proxy.routes = [{ host: "models.localhost", service: "inference", port: 11434 }]), ["models.localhost"]],
        ["dev: services.agent.host changed", STACKS.dev, (o) => (o.services.agent.host = "chat.localhost"), ["agent.localhost", "chat.localhost"]],
        // prod: tls acme, so engine caddy, which obtains its certificates itself.
        ["prod: a proxy.routes entry added", STACKS.prod, (o) => (o.proxy.routes = [{ host: "models.example.com", service: "inference", port: 11434, path: "/api/*" }]), []],
        ["prod: services.agent.host changed", STACKS.prod, (o) => (o.services.agent.host = "chat.example.com"), []],
    ];

    test.each(rows)("%s touches exactly ROUTE_CHANGE_TOUCHES", async (_title, s, change, hosts) => {
        const before = await baseline(s);
        const after = await evaluate(s, change);
        expectFootprint(before, after, ROUTE_CHANGE_TOUCHES(s, hosts));
    });
});
