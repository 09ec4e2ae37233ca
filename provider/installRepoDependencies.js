/**
 * `postinstall` of the plugin (provider/package.json). `pulumi package add <git-url>` clones the
 * repository and installs the plugin's dependencies in provider/ only, but the components the
 * plugin serves (../components/*.ts) load theirs from the repository's own node_modules. This
 * installs those (`npm install` at the repository root, which follows its package-lock.json) when
 * they are missing; in a checkout that has them it does nothing.
 */
const { execFileSync } = require("child_process");
const path = require("path");

const root = path.resolve(__dirname, "..");
try {
    require.resolve("@pulumi/pulumi/package.json", { paths: [root] });
    require.resolve("typescript/package.json", { paths: [root] });
} catch {
    // npm runs lifecycle scripts with npm_execpath set to its own CLI: use the same npm.
    const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ["npm"];
    console.error(`mmagent provider: installing the repository's dependencies in ${root} (npm install)`);
    execFileSync(npm[0], [...npm.slice(1), "install", "--no-audit", "--no-fund"], { cwd: root, stdio: "inherit" });
}
