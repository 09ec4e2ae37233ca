/**
 * Reads the stack's `mmagent:*` config and validates all of it (see config.ts) before the
 * program registers anything. Unknown keys are errors: a typo must not silently fall back to a
 * default.
 */
import * as pulumi from "@pulumi/pulumi";
import { CONFIG_NAMESPACE, configError, parseStackConfig, RawStackConfig, StackConfig } from "./config";

/** The `mmagent:` keys whose values are objects (YAML mappings). */
export const OBJECT_CONFIG_KEYS = ["host", "storage", "network", "proxy", "services"] as const;
/** Every `mmagent:` key the program reads; any other is refused. */
export const KNOWN_CONFIG_KEYS: ReadonlySet<string> = new Set<string>([...OBJECT_CONFIG_KEYS, "namePrefix", "allowPublicBind", "sshPrivateKey"]);

/** What {@link loadStackConfig} returns. */
export interface LoadedConfig {
    /** The validated config, every default filled in. */
    config: StackConfig;
    /** The `mmagent:sshPrivateKey` secret, when it is set. */
    sshPrivateKey?: pulumi.Output<string>;
}

/**
 * Reads the current stack's `mmagent:*` config and validates it with {@link parseStackConfig};
 * an unknown key, or any other problem, throws before anything is registered.
 * @param projectDir the directory of Pulumi.yaml (index.ts passes its own `__dirname`); a relative
 *   `storage.root` is resolved against it.
 */
export function loadStackConfig(projectDir: string): LoadedConfig {
    const cfg = new pulumi.Config(CONFIG_NAMESPACE);
    const unknown = Object.keys(pulumi.runtime.allConfig())
        .filter((k) => k.startsWith(`${CONFIG_NAMESPACE}:`))
        .map((k) => k.slice(CONFIG_NAMESPACE.length + 1))
        .filter((k) => !KNOWN_CONFIG_KEYS.has(k));
    if (unknown.length > 0) {
        throw configError(unknown.map((k) => ({ propertyPath: k, reason: `unknown key: remove it or check its spelling; known keys: ${[...KNOWN_CONFIG_KEYS].join(", ")}` })));
    }
    const raw: RawStackConfig = {};
    for (const key of OBJECT_CONFIG_KEYS) {
        const value = readObject(cfg, key);
        if (value !== undefined) raw[key] = value;
    }
    const prefix = cfg.get("namePrefix");
    if (prefix) raw.namePrefix = prefix;
    const allowPublicBind = cfg.get("allowPublicBind");
    if (allowPublicBind !== undefined) raw.allowPublicBind = allowPublicBind === "true" ? true : allowPublicBind === "false" ? false : allowPublicBind;
    const sshPrivateKey = cfg.getSecret("sshPrivateKey");
    const config = parseStackConfig(raw, {
        stackName: pulumi.getStack(),
        projectDir,
        hasSshPrivateKey: sshPrivateKey !== undefined,
        environment: process.env,
    });
    return { config, sshPrivateKey };
}

function readObject(cfg: pulumi.Config, key: string): unknown {
    const text = cfg.get(key);
    if (text === undefined) return undefined;
    try {
        return JSON.parse(text);
    } catch {
        throw configError([{ propertyPath: key, reason: "expected an object: write it as YAML mapping under the key in Pulumi.<stack>.yaml" }]);
    }
}
