/**
 * A stack's config as the program reads it, from `Pulumi.<stack>.yaml` on disk: the CLI
 * (`mmagent status`, `mmagent rollback`) sees the same validated StackConfig that `pulumi up`
 * would, without the Pulumi engine. Secrets are not decrypted here; the CLI asks the Pulumi CLI
 * for the one it needs (see sshAccess.ts).
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { CONFIG_NAMESPACE, configError, parseStackConfig, RawStackConfig, StackConfig } from "../components/config";
import { KNOWN_CONFIG_KEYS, OBJECT_CONFIG_KEYS } from "../components/loadConfig";

/** Why the CLI stops before it touches a host; printed without a stack trace. */
export class CliError extends Error {}

export interface StackFiles {
    /** The directory of Pulumi.yaml. */
    projectDir: string;
    /** The Pulumi project's name (Pulumi.yaml `name`). */
    project: string;
    stack: string;
    /** `Pulumi.<stack>.yaml`. */
    configFile: string;
    config: StackConfig;
    /** The `mmagent:` values as written (what parseStackConfig read). */
    raw: RawStackConfig;
    /** Whether the stack sets the `sshPrivateKey` secret. */
    hasSshPrivateKey: boolean;
}

/** The nearest directory from `start` upwards that holds Pulumi.yaml. */
export function findProjectDir(start: string): string {
    for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
        if (fs.existsSync(path.join(dir, "Pulumi.yaml"))) return dir;
        if (path.dirname(dir) === dir) throw new CliError(`no Pulumi.yaml in ${start} or above it: run mmagent inside the project`);
    }
}

/** The stacks that have a `Pulumi.<stack>.yaml`, sorted. */
export function listStacks(projectDir: string): string[] {
    return fs
        .readdirSync(projectDir)
        .map((f) => /^Pulumi\.([^.]+)\.yaml$/.exec(f)?.[1])
        .filter((s): s is string => s !== undefined)
        .sort();
}

/** `--stack`, else the only stack there is. */
export function chooseStack(projectDir: string, requested: string | undefined): string {
    const stacks = listStacks(projectDir);
    if (requested) {
        if (!stacks.includes(requested)) throw new CliError(`no Pulumi.${requested}.yaml in ${projectDir}; stacks here: ${stacks.join(", ") || "none"}`);
        return requested;
    }
    if (stacks.length === 1) return stacks[0];
    throw new CliError(`name the stack with --stack (stacks here: ${stacks.join(", ") || "none"})`);
}

/**
 * Reads and validates a stack's `mmagent:*` config the way loadConfig.ts does inside the program:
 * the same unknown-key refusal, the same namePrefix and allowPublicBind handling, the same
 * parseStackConfig. `opts.identityFile`: an SSH key given with --identity. Throws the program's own config error (every key path and its fix).
 */
export function readStackFiles(projectDir: string, stack: string, environment: NodeJS.ProcessEnv = process.env, opts: { identityFile?: string } = {}): StackFiles {
    const project = String((YAML.parse(fs.readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8")) ?? {}).name ?? "");
    const configFile = path.join(projectDir, `Pulumi.${stack}.yaml`);
    const doc = (YAML.parse(fs.readFileSync(configFile, "utf8")) ?? {}) as { config?: Record<string, unknown> };
    const values: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(doc.config ?? {})) {
        // A key without a namespace belongs to the project (Pulumi's own rule).
        const [ns, name] = key.includes(":") ? [key.slice(0, key.indexOf(":")), key.slice(key.indexOf(":") + 1)] : [project, key];
        if (ns === CONFIG_NAMESPACE || ns === project) values[name] = value;
    }
    const unknown = Object.keys(values).filter((k) => !KNOWN_CONFIG_KEYS.has(k));
    if (unknown.length > 0) {
        throw configError(unknown.map((k) => ({ propertyPath: k, reason: `unknown key: remove it or check its spelling; known keys: ${[...KNOWN_CONFIG_KEYS].join(", ")}` })));
    }
    const raw: RawStackConfig = {};
    for (const key of OBJECT_CONFIG_KEYS) if (values[key] !== undefined) raw[key] = values[key];
    if (values.namePrefix) raw.namePrefix = String(values.namePrefix);
    const apb = values.allowPublicBind;
    if (apb !== undefined) raw.allowPublicBind = apb === "true" ? true : apb === "false" ? false : apb;
    const hasSshPrivateKey = values.sshPrivateKey !== undefined;
    // A key file given on the command line stands in for the secret (which only the Pulumi CLI can decrypt).
    const config = parseStackConfig(raw, { stackName: stack, projectDir, hasSshPrivateKey: hasSshPrivateKey || opts.identityFile !== undefined, environment });
    return { projectDir, project, stack, configFile, config, raw, hasSshPrivateKey };
}
