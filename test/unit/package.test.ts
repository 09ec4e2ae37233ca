/**
 * The published package (issue 12 part 2): `npm run build` output packed with `npm pack`, then
 * checked as a consumer would get it: publint (package.json fields against the files), Are The
 * Types Wrong (the entry point and its types resolve for CommonJS and ESM consumers under node16
 * and for bundlers), and the host scripts the components read at run time are in the tarball
 * next to hostScript.js.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { BIN, packPackage, PackedPackage, REPO_ROOT } from "../support/packPackage";

jest.setTimeout(120_000);

let packed: PackedPackage;
beforeAll(() => {
    packed = packPackage();
});
afterAll(() => {
    if (packed) fs.rmSync(packed.dir, { recursive: true, force: true });
});

function run(bin: string, args: string[]) {
    const r = spawnSync(path.join(BIN, bin), args, { encoding: "utf8", cwd: packed.dir, env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" } });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test("package.json names a scoped, versioned package whose entry points are in dist/", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8"));
    expect(pkg.name).toBe("@mmagent/components");
    expect(pkg.version).toBe("0.1.0");
    expect(pkg.private).toBeUndefined();
    expect(pkg.main).toBe("dist/index.js");
    expect(pkg.types).toBe("dist/index.d.ts");
    expect(pkg.exports["."]).toEqual({ types: "./dist/index.d.ts", default: "./dist/index.js" });
});

test("the tarball holds the compiled components, their declarations and the host scripts, and nothing else", () => {
    const scripts = fs.readdirSync(path.join(REPO_ROOT, "components", "scripts")).filter((f) => f.endsWith(".sh"));
    expect(scripts.length).toBeGreaterThan(0);
    for (const s of scripts) expect(packed.files).toContain(`dist/scripts/${s}`);
    const components = fs.readdirSync(path.join(REPO_ROOT, "components")).filter((f) => f.endsWith(".ts"));
    for (const c of components) {
        expect(packed.files).toContain(`dist/${c.replace(/\.ts$/, ".js")}`);
        expect(packed.files).toContain(`dist/${c.replace(/\.ts$/, ".d.ts")}`);
    }
    const unexpected = packed.files.filter((f) => !/^dist\/[^/]+\.(js|d\.ts)$/.test(f) && !/^dist\/scripts\/[^/]+\.sh$/.test(f) && !["package.json", "README.md"].includes(f));
    expect(unexpected).toEqual([]);
});

test("publint finds nothing, not even a suggestion", () => {
    const r = run("publint", ["run", packed.tarball, "--strict", "--level", "suggestion"]);
    expect(r.out).not.toMatch(/Suggestions:|Warnings:|Errors:/);
    expect(r.out).toContain("All good!");
    expect(r.status).toBe(0);
});

test("Are The Types Wrong finds no problem for node16 (CommonJS and ESM importers) and bundlers", () => {
    const r = run("attw", [packed.tarball, "--profile", "node16", "--format", "json"]);
    const report = JSON.parse(r.out.slice(r.out.indexOf("{")));
    expect(report.analysis.packageName).toBe("@mmagent/components");
    expect(report.problems).toEqual({});
    expect(r.status).toBe(0);
});

test("the built package finds its host scripts from dist/ (hostScriptPath is __dirname/scripts)", () => {
    // The staging build is what was packed; require it directly, with the checkout's dependencies.
    const modules = path.join(packed.dir, "stage", "node_modules");
    if (!fs.existsSync(modules)) fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), modules);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const hostScript = require(path.join(packed.dir, "stage", "dist", "hostScript.js"));
    for (const s of ["prepare-host", "storage", "proxy-config"]) {
        const p: string = hostScript.hostScriptPath(s);
        expect(p).toBe(path.join(packed.dir, "stage", "dist", "scripts", `${s}.sh`));
        expect(hostScript.readHostScript(s)).toBe(fs.readFileSync(path.join(REPO_ROOT, "components", "scripts", `${s}.sh`), "utf8"));
    }
});
