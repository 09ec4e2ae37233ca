/**
 * CHANGELOG.md is kept with changesets (.changeset/, `npm run changeset`, `npm run version-packages`):
 * the version in package.json has its entry, the newest on top, in the layout `changeset version`
 * writes into (it inserts each new `## <version>` section below the `# <package name>` title).
 */
import * as fs from "fs";
import * as path from "path";
import * as semver from "semver";

const ROOT = path.resolve(__dirname, "../..");
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { name: string; version: string; scripts: Record<string, string> };
const changelog = fs.readFileSync(path.join(ROOT, "CHANGELOG.md"), "utf8");
/** The `## <version>` headings, top to bottom. */
const versions = [...changelog.matchAll(/^## (.+)$/gm)].map((m) => m[1].trim());

describe("CHANGELOG.md", () => {
    it("is titled with the package name, where changesets inserts new entries", () => {
        expect(changelog.split("\n")[0]).toBe(`# ${pkg.name}`);
    });

    it(`has an entry for the version in package.json, on top`, () => {
        expect(versions).toContain(pkg.version);
        expect(versions[0]).toBe(pkg.version);
        // The entry says something.
        const body = changelog.split(/^## .+$/m)[1] ?? "";
        expect(body.trim().length).toBeGreaterThan(0);
    });

    it("lists only semver versions, newest first, each once", () => {
        for (const v of versions) expect(semver.valid(v)).toBe(v);
        expect([...versions].sort(semver.rcompare)).toEqual(versions);
        expect(new Set(versions).size).toBe(versions.length);
    });

    it("is maintained by changesets: config on main, scripts to add a changeset and to version", () => {
        const config = JSON.parse(fs.readFileSync(path.join(ROOT, ".changeset", "config.json"), "utf8")) as { baseBranch: string; access: string };
        expect(config.baseBranch).toBe("main");
        expect(config.access).toBe("restricted");
        expect(pkg.scripts.changeset).toBe("changeset");
        expect(pkg.scripts["version-packages"]).toBe("changeset version");
        // Not "version": npm runs a script of that name inside `npm version` (a lifecycle hook).
        expect(pkg.scripts.version).toBeUndefined();
    });
});
