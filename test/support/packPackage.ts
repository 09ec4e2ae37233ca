/**
 * Packs the component package the way a release would, without touching the checkout: builds
 * with scripts/build.sh into a staging folder under /tmp/mmagent-pack-*, next to a copy of
 * package.json and README.md, and runs `npm pack` there. Tests then check (publint, attw) and
 * install exactly that tarball.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");
export const BIN = path.join(REPO_ROOT, "node_modules", ".bin");

export interface PackedPackage {
    /** The temporary folder holding everything (remove it when done). */
    dir: string;
    /** Absolute path of the .tgz. */
    tarball: string;
    /** Paths inside the tarball, relative to its `package/` root. */
    files: string[];
}

export function packPackage(): PackedPackage {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-pack-"));
    const stage = path.join(dir, "stage");
    fs.mkdirSync(stage);
    for (const f of ["package.json", "README.md"]) fs.copyFileSync(path.join(REPO_ROOT, f), path.join(stage, f));
    execFileSync("bash", [path.join(REPO_ROOT, "scripts", "build.sh"), path.join(stage, "dist")], { stdio: "pipe" });
    // --ignore-scripts: prepack would build into the staging folder's own dist/ again, with no sources there.
    const out = execFileSync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: stage, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
    return { dir, tarball: path.join(dir, info.filename), files: info.files.map((f) => f.path).sort() };
}
