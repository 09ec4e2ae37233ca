/**
 * Property-based fuzzing of the config validator (fast-check): configs generated from a mix of
 * good values, near misses and hostile strings, at every key. Every accepted config must build
 * the whole stack under mocks without throwing and with every output resolving; every rejected
 * one must fail with pulumi.InputPropertiesError whose problems each name a real `mmagent:` key
 * path and say how to fix it — never a crash, never "(config)" without a key.
 */
import * as fc from "fast-check";
import * as pulumi from "@pulumi/pulumi";
import { parseStackConfig } from "../../components/config";
import { composeStack } from "../../components/stack";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { removeSshClientDir } from "../support/host";
import { mockNewResource } from "../support/mockProgram";
import { payloads } from "../support/injection";

const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
const TOP_LEVEL_KEYS = new Set(["namePrefix", "allowPublicBind", "host", "storage", "network", "proxy", "services", "sshPrivateKey"]);

/** The stack: with the tests' prefix, so what it writes on the machine is found as a test's (scripts/reap-test-leftovers.sh). */
const STACK = "mmtest-fuzz";

// An ssh config makes the program write its key files (components/dockerSsh.ts): remove this test's.
const SSH_ROOT = path.join(os.userInfo().homedir, ".mmagent", "ssh");
const removeFuzzSshDirs = () => {
    if (!fs.existsSync(SSH_ROOT)) return;
    for (const d of fs.readdirSync(SSH_ROOT).filter((d) => d.startsWith(`mmagent.${STACK}.`))) removeSshClientDir(path.join(SSH_ROOT, d));
};
afterAll(removeFuzzSshDirs);

beforeAll(async () => {
    // The dir backend's warning is expected here; a thousand of them would only slow the run.
    jest.spyOn(pulumi.log, "warn").mockImplementation(() => Promise.resolve());
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => mockNewResource(args),
            call: (args) => {
                throw new Error(`unexpected invoke ${args.token}`);
            },
        },
        "mmagent",
        STACK,
        false,
        "organization",
    );
});

const hostile = fc.constantFrom(...payloads("/tmp/fuzz-canary").map((p) => p.value.slice(0, 200)));
/** Mostly good values, some near misses, some garbage. */
const mix = <T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<unknown>) =>
    fc.oneof({ weight: 150, arbitrary: good as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: bad }, { weight: 1, arbitrary: hostile });
/** Usually absent: keys that only make sense now and then (restoreFrom, per-service GPUs). */
const rarely = (a: fc.Arbitrary<unknown>) => fc.oneof({ weight: 12, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: a });

const name = mix(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}[a-z0-9]$/), fc.constantFrom("", "A", "a_b", "-a", "a".repeat(40), 7));
const image = mix(
    fc.constantFrom("redis:7.4.6-alpine", "ghcr.io/open-webui/open-webui:v0.6.34", "local/x:1", `caddy@sha256:${"a".repeat(64)}`, "registry.example.com:5000/team/app:2.1"),
    fc.constantFrom("redis", "Redis:7", "redis@sha256:12", ":latest", "a b:1", ""),
);
const cpuSet = mix(fc.constantFrom("0", "0-1", "0-3,5", "1,3"), fc.constantFrom("0-", "a", "3-1", "0,,1", " 0"));
const ipv6Subnet = mix(fc.constantFrom("fd00:1::/64", "fd6d:6d61:6765:1::/64", "2001:db8::/56"), fc.constantFrom("fd00::/120", "fd00::/129", "nope", "10.0.0.0/24"));
const ipv4Subnet = mix(fc.constantFrom("172.16.10.0/24", "10.20.0.0/16"), fc.constantFrom("172.30.10.0/33", "300.1.1.0/24", "fd00::/64"));
const port = mix(fc.integer({ min: 1024, max: 65535 }), fc.oneof(fc.integer({ min: -5, max: 0 }), fc.constant(70000), fc.constant("80")));
const dnsName = mix(fc.constantFrom("agent.localhost", "agent.example.com", "ui.example.org"), fc.constantFrom("-bad", "a..b", "agent_x.com", ""));
const env = fc.dictionary(mix(fc.stringMatching(/^[A-Z][A-Z0-9_]{0,8}$/), fc.constantFrom("1A", "A-B", "")) as fc.Arbitrary<string>, mix(fc.string({ maxLength: 20 }), fc.constant("a\nb")), { maxKeys: 3 });
const gpus = mix(fc.oneof(fc.constant("none"), fc.constant("all"), fc.uniqueArray(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 3 })), fc.constantFrom([], "0", [-1], ["gpu0"]));
const capAdd = fc.array(mix(fc.constantFrom("CHOWN", "SETUID", "SETGID", "NET_BIND_SERVICE"), fc.constantFrom("SYS_ADMIN", "ALL", "NET_ADMIN", "FLY")), { maxLength: 2 });
const extraVolume = fc.record({
    name,
    profile: mix(fc.constantFrom("db", "media", "models", "logs", "text", "cache"), fc.constantFrom("fast", "")),
    target: mix(fc.constantFrom("/extra", "/data/more", "/srv/x"), fc.constantFrom("relative", "/a/../b", "/")),
    readOnly: fc.boolean(),
});

const service = fc.record(
    {
        enabled: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
        image,
        cpuSet,
        memoryMiB: mix(fc.integer({ min: 16, max: 65536 }), fc.constantFrom(1, "2g", 1.5)),
        env,
        restoreFrom: rarely(mix(fc.constantFrom("mmagent-pre-1a2b3c4d", "mmagent-pre-00000001"), fc.constantFrom("yesterday", "mmagent-pre-"))),
        host: rarely(dnsName),
        extraVolumes: fc.array(extraVolume, { maxLength: 2 }),
        gpus: rarely(gpus),
        capAdd,
    },
    { requiredKeys: [] },
);

const rawConfig = fc.record(
    {
        namePrefix: name,
        allowPublicBind: mix(fc.boolean(), fc.constant("yes")),
        host: fc.record(
            {
                connection: fc.oneof(
                    { weight: 20, arbitrary: fc.constant({ kind: "local" }) },
                    { weight: 3, arbitrary: fc.record({ kind: fc.constant("ssh"), host: mix(fc.constantFrom("gpu1.example.com", "10.0.0.5"), fc.constant("gpu1;id")), hostKey: fc.constant("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJFUExBQ0UtVEhJUy1XSVRILVlPVVItSE9TVFMtS0VZ") }) },
                    { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom("winrm", "") }) },
                ),
                gpus,
                toolkitVersion: mix(fc.constantFrom("1.18.0-1", "1.17.8-1"), fc.constantFrom("latest", "1.18.0 -1")),
                cdi: fc.boolean(),
                sysctls: fc.dictionary(mix(fc.constantFrom("fs.inotify.max_user_watches", "vm.swappiness"), fc.constant("vm swappiness")) as fc.Arbitrary<string>, mix(fc.constantFrom("524288", "10"), fc.constant("1\n2")), { maxKeys: 2 }),
            },
            { requiredKeys: [] },
        ),
        storage: fc.record(
            {
                backend: fc.constant("placeholder"),
                root: fc.constant("placeholder"),
                retention: fc.record({ keep: mix(fc.integer({ min: 1, max: 50 }), fc.constantFrom(0, -1, 1001)) }),
                quotasGiB: fc.dictionary(name as fc.Arbitrary<string>, mix(fc.integer({ min: 1, max: 100 }), fc.constant(-1)), { maxKeys: 1 }),
            },
            { requiredKeys: ["backend", "root"] },
        ),
        network: fc.record({ name: mix(fc.constantFrom("reverse_proxy", "mm-net"), fc.constant("Bad Net")), ipv6Subnet, ipv4Subnet }, { requiredKeys: [] }),
        proxy: fc.record(
            {
                image,
                bindAddress: mix(fc.constantFrom("127.0.0.1", "::1", "10.0.0.5"), fc.constantFrom("0.0.0.0", "::", "localhost", "1.2.3")),
                httpPort: port,
                httpsPort: port,
                tls: mix(fc.constantFrom("internal", "internal", "off", "acme"), fc.constant("on")),
                acmeEmail: mix(fc.constantFrom("ops@example.com"), fc.constant("ops")),
                adminApi: mix(fc.constantFrom("off", "loopback"), fc.constant("public")),
                routes: fc.array(
                    fc.record({ host: dnsName, service: mix(fc.constantFrom("agent", "inference"), fc.constantFrom("db", "vectorDb")), port, path: mix(fc.constantFrom("/api/*", "/v1/*"), fc.constant("api")) }, { requiredKeys: ["host", "service", "port"] }),
                    { maxLength: 1 },
                ),
            },
            { requiredKeys: [] },
        ),
        services: fc.record({ inference: service, agent: fc.tuple(service, dnsName).map(([s, host]) => ({ ...s, host })), cache: service, vectorDb: service }, { requiredKeys: [] }),
    },
    { requiredKeys: ["storage"] },
);
/** A backend with a root that fits it, or now and then one that does not. */
const backendAndRoot = fc.oneof(
    { weight: 20, arbitrary: fc.constantFrom(["btrfs", "/srv/mmagent"], ["zfs", "tank/mmagent"], ["dir", ".mmagent-data/dev"], ["dir", "/srv/plain"]) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom("btrfs", "zfs", "dir", "ext4"), fc.constantFrom("../x", "/a/../b", "tank mm", "", "tank/mmagent", "/srv/mmagent")) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom("btrfs", "zfs"), hostile) },
);
/** The full raw config; now and then with a key that does not exist. */
const rawWithTypos = fc.tuple(rawConfig, backendAndRoot, fc.integer({ min: 0, max: 29 })).map(([c, [backend, root], n]) => {
    const config: Record<string, unknown> = { ...c, storage: { ...c.storage, backend, root } };
    return n === 0 ? { ...config, storgae: { backend: "dir" } } : config;
});

async function settle(value: unknown): Promise<void> {
    if (pulumi.Output.isInstance(value)) {
        await new Promise<void>((resolve, reject) => {
            (value as pulumi.Output<unknown>).apply((v) => resolve(void v));
            setTimeout(() => reject(new Error("an output did not resolve within 10 s")), 10_000).unref();
        });
    } else if (value && typeof value === "object") {
        for (const v of Object.values(value)) await settle(v);
    }
}

test(`${RUNS} generated configs: accepted ones build the stack under mocks, rejected ones name a key path`, async () => {
    const tally = { accepted: 0, rejected: 0, problems: 0 };
    await fc.assert(
        fc.asyncProperty(rawWithTypos, fc.boolean(), async (raw, hasKey) => {
            let config;
            try {
                config = parseStackConfig(raw as Record<string, unknown>, { stackName: STACK, projectDir: "/proj", hasSshPrivateKey: hasKey });
            } catch (e) {
                if (!pulumi.InputPropertiesError.isInstance(e)) throw new Error(`not an InputPropertiesError: ${String(e)}`);
                expect(e.errors.length).toBeGreaterThan(0);
                for (const p of e.errors) {
                    const key = p.propertyPath.replace(/^mmagent:/, "").split(/[.[]/)[0];
                    // A real key of the schema, or the misspelt key itself, called unknown.
                    const named = TOP_LEVEL_KEYS.has(key) || (key in (raw as object) && p.reason.startsWith("unknown key"));
                    expect({ path: p.propertyPath, named }).toEqual({ path: expect.stringMatching(/^mmagent:[A-Za-z]/), named: true });
                    expect(p.reason.length).toBeGreaterThan(8);
                }
                tally.rejected++;
                tally.problems += e.errors.length;
                return;
            }
            tally.accepted++;
            // The SDK takes a stack trace per resource for its source position; under ts-jest's
            // source maps that is most of the cost of a build, and irrelevant here.
            const stackTraceLimit = Error.stackTraceLimit;
            Error.stackTraceLimit = 0;
            let stack;
            try {
                stack = composeStack(config, { sshPrivateKey: hasKey ? pulumi.secret("-----BEGIN OPENSSH PRIVATE KEY-----") : undefined });
            } finally {
                Error.stackTraceLimit = stackTraceLimit;
            }
            await settle(stack);
        }),
        { numRuns: RUNS },
    );
    console.log(`fuzzing: ${RUNS} generated configs — ${tally.accepted} accepted and built under mocks, ${tally.rejected} rejected with ${tally.problems} problems, each naming a key path`);
    // Both branches must really be exercised.
    expect(tally.accepted).toBeGreaterThan(RUNS / 10);
    expect(tally.rejected).toBeGreaterThan(RUNS / 10);
}, 300_000);
