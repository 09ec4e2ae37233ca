/**
 * The pinned Pulumi CLI of `npm run up` (scripts/up.sh): its version lives in package.json
 * ("config": {"pulumiCliVersion"}), its installation in `.pulumi-cli/` of the project.
 *
 * scripts/lib/install-pulumi-cli.sh runs installPulumiCli with Node's type stripping (the Node 22
 * of the `node` dev dependency); the unit tests import it with a mocked Automation API.
 * ESM syntax and the explicit `index.js`: Node runs this file as an ES module, where a directory
 * import (`@pulumi/pulumi/automation`) is refused.
 */
import { PulumiCommand } from "@pulumi/pulumi/automation/index.js";
import semver from "semver";

/**
 * Installs Pulumi CLI `version` under `root` (the binary is `<root>/bin/pulumi`, next to its
 * bundled language plugins) with the Automation API's PulumiCommand.install, which downloads
 * https://get.pulumi.com/install.sh and runs it with `--install-root <root> --version <version>`
 * (it needs curl and tar). A CLI already in `root` at that version or newer is kept. Returns the
 * binary's absolute path.
 */
export async function installPulumiCli(root: string, version: string): Promise<string> {
    const pinned = semver.parse(version);
    if (!pinned) throw new Error(`not a Pulumi CLI version: "${version}" (expected X.Y.Z, as package.json config.pulumiCliVersion)`);
    const cli = await PulumiCommand.install({ root, version: pinned });
    return cli.command;
}
