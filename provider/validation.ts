/**
 * How the provider's components check their inputs before anything is registered: with the
 * project's own rules and messages, reported all at once as one `pulumi.InputPropertiesError`
 * whose property paths are the component's input names (`sshHostKey`, `volumes[2].profile`), so
 * the engine prints them next to the input that is wrong in any language.
 *
 * Two sources of rules, both the ones the TypeScript stack uses:
 * - {@link InputChecker.stackConfig}: what the stack config also has (host connection, GPUs,
 *   storage backend and root, network and proxy settings, the services) goes through
 *   `parseStackConfig` itself (components/config.ts), inside an otherwise valid config, and each
 *   problem's config key path is mapped back to the input it came from;
 * - {@link InputChecker.check}: inputs the stack config has no key for (a StorageLayout's own
 *   volume list, route upstreams) go through the validators.ts schemas directly.
 */
import * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import { CONFIG_NAMESPACE, formatPath, parseStackConfig, RawStackConfig, StackConfig } from "../components/config";

export interface Problem {
    /** The component input, e.g. `sshHostKey` or `volumes[2].profile`. */
    propertyPath: string;
    reason: string;
}

/**
 * Where a stack config key's problems are reported: `from` (a config key path below `mmagent:`)
 * and everything below it go to `to`; with `keepRest` the part below `from` is appended
 * (`host.sysctls.vm.x` → `sysctls.vm.x`), without it the problem is reported at `to` itself.
 */
export interface PathMapping {
    from: string;
    to: string;
    keepRest?: boolean;
}

/** Appends a zod issue path (or a config path suffix) to a property path. */
export function joinPath(base: string, rest: PropertyKey[] | string): string {
    const suffix = typeof rest === "string" ? rest : formatPath(rest);
    if (!suffix) return base;
    if (!base) return suffix;
    return suffix.startsWith("[") ? `${base}${suffix}` : `${base}.${suffix}`;
}

/** Maps a config key path to the component input it came from (the first mapping that matches). */
export function mapConfigPath(configPath: string, mappings: PathMapping[]): string | undefined {
    for (const m of mappings) {
        if (configPath === m.from) return m.to;
        if (configPath.startsWith(`${m.from}.`) || configPath.startsWith(`${m.from}[`)) {
            return m.keepRest ? joinPath(m.to, configPath.slice(m.from.length).replace(/^\./, "")) : m.to;
        }
    }
    return undefined;
}

/**
 * A stack config reason as the component's inputs say it: config key paths it names
 * (`set proxy.acmeEmail`, `at proxy.routes[0].host`) become the inputs they map to.
 */
export function rewriteKeys(reason: string, mappings: PathMapping[]): string {
    let out = reason.split(`${CONFIG_NAMESPACE}:`).join("");
    for (const m of [...mappings].sort((a, b) => b.from.length - a.from.length)) {
        const escaped = m.from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
        out = out.replace(new RegExp(`(?<![\\w.])${escaped}(?![\\w])`, "g"), m.to);
    }
    return out;
}

/** A config that `parseStackConfig` accepts as it is: the sections a component does not use get these. */
const NEUTRAL_CONFIG: RawStackConfig = {
    namePrefix: "provider",
    storage: { backend: "btrfs", root: "/srv/mmagent" },
};

export class InputChecker {
    readonly problems: Problem[] = [];

    add(propertyPath: string, reason: string): void {
        this.problems.push({ propertyPath, reason });
    }

    /** Runs a validators.ts (zod) schema on one input; each issue is a problem at that input. */
    check<T>(propertyPath: string, schema: z.ZodType<T>, value: unknown): T | undefined {
        const r = schema.safeParse(value);
        if (r.success) return r.data;
        for (const issue of r.error.issues) this.add(joinPath(propertyPath, issue.path), issue.message);
        return undefined;
    }

    /**
     * Inputs the schema declares plain must be known when the component is created: a value that
     * arrives as an output (of another resource, or a secret) cannot be validated or planned
     * with. Reports each such place, deeply.
     */
    plain(propertyPath: string, value: unknown): void {
        if (pulumi.Output.isInstance(value) || value instanceof Promise) {
            this.add(
                propertyPath,
                "must be a plain value known when the component is created, not an output of another resource or a secret: pass the value itself",
            );
        } else if (Array.isArray(value)) {
            value.forEach((item, i) => this.plain(`${propertyPath}[${i}]`, item));
        } else if (value !== null && typeof value === "object") {
            for (const [k, item] of Object.entries(value)) this.plain(joinPath(propertyPath, k), item);
        }
    }

    /**
     * Validates `raw` (sections of a stack config) with `parseStackConfig`, the stack's own rules
     * and messages; the other sections are neutral. Problems are reported at the inputs
     * `mappings` names (a problem no mapping covers keeps its config path, so none is lost).
     * Returns the validated config with defaults applied, or undefined when there were problems.
     */
    stackConfig(raw: RawStackConfig, mappings: PathMapping[], ctx: { hasSshPrivateKey: boolean }): StackConfig | undefined {
        try {
            return parseStackConfig(
                { ...NEUTRAL_CONFIG, ...raw },
                // The provider process inherits the environment of `pulumi`, as the Docker provider does.
                { projectDir: "/", stackName: "provider", hasSshPrivateKey: ctx.hasSshPrivateKey, environment: process.env },
            );
        } catch (e) {
            if (!pulumi.InputPropertiesError.isInstance(e)) throw e;
            for (const err of e.errors) {
                // `mmagent:host.gpus`, or `$DOCKER_CONTEXT` for the environment.
                const configPath = err.propertyPath.startsWith(`${CONFIG_NAMESPACE}:`) ? err.propertyPath.slice(CONFIG_NAMESPACE.length + 1) : err.propertyPath;
                this.add(mapConfigPath(configPath, mappings) ?? err.propertyPath, rewriteKeys(err.reason, mappings));
            }
            return undefined;
        }
    }

    /** Throws every problem at once, naming the component and the inputs. */
    throwIfAny(type: string, name: string): void {
        if (this.problems.length === 0) return;
        throw inputError(type, name, this.problems);
    }
}

export function inputError(type: string, name: string, problems: Problem[]): pulumi.InputPropertiesError {
    const lines = problems.map((p) => `  - ${p.propertyPath}: ${p.reason}`);
    return new pulumi.InputPropertiesError({
        message: `${type} "${name}" has ${problems.length} invalid input(s); nothing was created:\n${lines.join("\n")}`,
        errors: problems.map((p) => ({ propertyPath: p.propertyPath, reason: p.reason })),
    });
}

/**
 * A GPU list as the provider takes it: "none", "all", or indices/UUIDs separated by commas
 * ("0,1", "GPU-…"); as the stack config's `gpus` value (numbers for indices).
 */
export function parseGpuList(value: string | undefined): unknown {
    if (value === undefined) return undefined;
    if (typeof value !== "string") return value;
    const s = value.trim();
    if (s === "none" || s === "all") return s;
    return s.split(",").map((id) => (/^\s*\d+\s*$/.test(id) ? Number(id) : id.trim()));
}

/**
 * The inputs as the components read them: an SDK may send an absent optional input as null
 * (a Python `None`); here it is left out, as in TypeScript. Outputs are kept as they are.
 */
export function withoutNulls<T>(value: T): T {
    if (Array.isArray(value)) return value.map((v) => withoutNulls(v)) as T;
    if (value === null || typeof value !== "object" || pulumi.Output.isInstance(value) || pulumi.Resource.isInstance(value) || value instanceof Promise) return value;
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return value;
    return Object.fromEntries(
        Object.entries(value as Record<string, unknown>)
            .filter(([, v]) => v !== null && v !== undefined)
            .map(([k, v]) => [k, withoutNulls(v)]),
    ) as T;
}
