/**
 * examples/two-teams as another team would run it: a copy of the example in /tmp/mmagent-example-*
 * with the packed @mmagent/components tarball installed into its node_modules (unpacked as npm
 * would; its dependencies are the checkout's, linked, so the test needs no registry), then the
 * example's index.ts type-checked against the package's declarations and evaluated under Pulumi
 * mocks: both teams' containers, one shared proxy network they all join, one proxy with both
 * teams' routes.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { mockNewResource } from "../support/mockProgram";
import { reveal } from "../support/secrets";
import { BIN, packPackage, PackedPackage, REPO_ROOT } from "../support/packPackage";

jest.setTimeout(120_000);

const EXAMPLE = path.join(REPO_ROOT, "examples", "two-teams");
const CONTAINER = "docker:index/container:Container";
const NETWORK = "docker:index/network:Network";

interface Registered {
    type: string;
    name: string;
    inputs: Record<string, any>;
}

let packed: PackedPackage;
let exampleDir: string;
const registered: Registered[] = [];
const outputs: Record<string, any> = {};
const warnings: string[] = [];

/** Installs the tarball as npm would (package/ → node_modules/<name>) and links what it and the example depend on. */
function installTarball(dir: string, tarball: string) {
    const target = path.join(dir, "node_modules", "@mmagent", "components");
    fs.mkdirSync(target, { recursive: true });
    execFileSync("tar", ["-xzf", tarball, "-C", target, "--strip-components=1"]);
    const pkg = JSON.parse(fs.readFileSync(path.join(target, "package.json"), "utf8"));
    const example = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
    const deps = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(example.dependencies ?? {}), "@types/node"]);
    deps.delete(pkg.name);
    for (const dep of deps) {
        const link = path.join(dir, "node_modules", dep);
        fs.mkdirSync(path.dirname(link), { recursive: true });
        fs.symlinkSync(path.join(REPO_ROOT, "node_modules", dep), link);
    }
}

beforeAll(async () => {
    packed = packPackage();
    exampleDir = path.join(packed.dir, "two-teams");
    fs.mkdirSync(exampleDir);
    for (const f of fs.readdirSync(EXAMPLE)) {
        if (f !== "node_modules") fs.cpSync(path.join(EXAMPLE, f), path.join(exampleDir, f), { recursive: true });
    }
    // The example names the tarball `npm pack` leaves at the repository root; use this test's.
    const pkgFile = path.join(exampleDir, "package.json");
    const pkg = JSON.parse(fs.readFileSync(pkgFile, "utf8"));
    pkg.dependencies["@mmagent/components"] = `file:${packed.tarball}`;
    fs.writeFileSync(pkgFile, JSON.stringify(pkg, null, 2));
    installTarball(exampleDir, packed.tarball);

    await pulumi.runtime.setMocks(
        {
            newResource(args) {
                registered.push({ type: args.type, name: args.name, inputs: args.inputs });
                return mockNewResource(args);
            },
            call(args) {
                throw new Error(`unexpected invoke ${args.token}`);
            },
        },
        "mmagent-two-teams",
        "dev",
        false,
        "organization",
    );
    pulumi.runtime.setAllConfig({ "mmagent-two-teams:storageRoot": "/srv/two-teams" });
    // The package's @pulumi/pulumi is this one (linked), so its warnings land here.
    const warn = pulumi.log.warn;
    (pulumi.log as any).warn = (msg: string) => void warnings.push(msg);
    const program = await import(path.join(exampleDir, "index.ts"));
    for (const [k, v] of Object.entries(program)) {
        outputs[k] = pulumi.Output.isInstance(v) ? await new Promise((r) => (v as pulumi.Output<unknown>).apply(r)) : v;
    }
    await new Promise((r) => setTimeout(r, 50));
    (pulumi.log as any).warn = warn;
});

afterAll(() => {
    if (packed) fs.rmSync(packed.dir, { recursive: true, force: true });
});

test("the example resolves @mmagent/components to the installed tarball, not the checkout", () => {
    const resolved = require.resolve("@mmagent/components", { paths: [exampleDir] });
    expect(resolved).toBe(path.join(exampleDir, "node_modules", "@mmagent", "components", "dist", "index.js"));
});

test("the example type-checks against the package's declarations (tsc, its own tsconfig)", () => {
    const r = (() => {
        try {
            return { status: 0, out: execFileSync(path.join(BIN, "tsc"), ["--noEmit", "-p", exampleDir], { encoding: "utf8", stdio: "pipe" }) };
        } catch (e: any) {
            return { status: e.status, out: `${e.stdout}${e.stderr}` };
        }
    })();
    expect(r.out).toBe("");
    expect(r.status).toBe(0);
});

test("the only warnings are the dir backend's (no snapshots), once per StorageLayout", () => {
    expect(warnings).toHaveLength(3);
    for (const w of warnings) expect(w).toMatch(/storage backend "dir" takes no snapshots/);
});

test("both teams' containers and one shared proxy, all on one network", () => {
    const networks = registered.filter((r) => r.type === NETWORK);
    expect(networks.map((n) => n.inputs.name)).toEqual(["two-teams-proxy"]);
    const containers = registered.filter((r) => r.type === CONTAINER);
    const names = containers.map((c) => c.inputs.name).sort();
    expect(names).toEqual(
        expect.arrayContaining(["shared-proxy", "vision-agent", "vision-inference", "vision-cache", "speech-agent", "speech-inference", "speech-cache"]),
    );
    expect(names.filter((n: string) => n.startsWith("vision-")).length).toBeGreaterThanOrEqual(3);
    expect(names.filter((n: string) => n.startsWith("speech-")).length).toBe(names.filter((n: string) => n.startsWith("vision-")).length + 1); // speech has the vector DB
    for (const c of containers) {
        expect(c.inputs.networksAdvanced.map((n: { name: string }) => n.name)).toEqual(["two-teams-proxy"]);
    }
    expect(outputs.networkName).toBe("two-teams-proxy");
    expect(outputs.containers.vision.agent).toBe("vision-agent");
    expect(outputs.containers.speech.agent).toBe("speech-agent");
});

test("one proxy routes both teams' host names to their own agents", () => {
    expect(Object.keys(outputs.urls).sort()).toEqual(["speech.localhost", "vision.localhost"]);
    const configSteps = registered.filter((r) => r.type.startsWith("command:") && reveal(r.inputs.stdin)?.includes?.("MMAGENT_CONFIG="));
    expect(configSteps).toHaveLength(1);
    expect(registered.filter((r) => r.type === CONTAINER && /proxy/.test(r.inputs.name))).toHaveLength(1);
});

test("each team's volumes live under its own root, with its own Docker volume names", () => {
    const volumes = registered.filter((r) => r.type === "docker:index/volume:Volume").map((v) => v.inputs.name as string);
    expect(volumes.some((v) => v.startsWith("vision-"))).toBe(true);
    expect(volumes.some((v) => v.startsWith("speech-"))).toBe(true);
    expect(new Set(volumes).size).toBe(volumes.length);
});
