/**
 * What every provider fake of the real-engine harness is: one small object per resource type that
 * does what the provider's CRUD functions do — create through the real engine or host, read back
 * what the provider's Read stores, diff stored state against new inputs with the provider's
 * schema rules, update, delete — and names the provider functions it mirrors.
 *
 * The diff follows the Terraform plugin SDK as the Pulumi bridge runs it: each top-level property
 * compares the program's input with the stored state (what Read returned after create, or the
 * earlier input where Read does not set it); a property left out of the program is "empty" unless
 * the schema marks it Computed (then the stored value stands); a ForceNew property replaces.
 */
import type Docker from "dockerode";

export type Props = Record<string, any>;

export interface FakeContext {
    docker: Docker;
    /** The stack's outputs from its last apply (what a stack reference to itself reads). */
    lastOutputs: Record<string, unknown>;
}

export interface PropertyDiff {
    /** Input name (top level). */
    property: string;
    kind: "update" | "replace";
    old: unknown;
    new: unknown;
}

/** How the provider's schema treats one top-level property. */
export interface PropertyRule {
    /** A change replaces the resource (schema ForceNew, or a bridge `replaceOnChanges`). */
    forceNew: boolean;
    /** Optional+Computed: left out of the program, the stored value stands (no diff). */
    computed?: boolean;
    /** The schema Default: what a left-out input means. */
    default?: unknown;
    /** Comparable form: sets sorted, schema defaults filled in, DiffSuppressFuncs applied. */
    canonical?: (value: any) => unknown;
}

export type Schema = Record<string, PropertyRule>;

export interface Created {
    id: string;
    state: Props;
}

export interface ResourceFake {
    /** The Pulumi type token. */
    readonly type: string;
    /** The provider (or engine) functions this fake mirrors, as `repo@version:path (function)`. */
    readonly mirrors: readonly string[];
    /** Refuses inputs the fake does not model, naming them: an unmodelled input is never dropped silently. */
    check(inputs: Props): void;
    create(ctx: FakeContext, inputs: Props): Promise<Created>;
    /** What the provider's Read stores; undefined when the resource is gone. */
    read(ctx: FakeContext, id: string, state: Props): Promise<Props | undefined>;
    /** The provider's diff of stored state against the program's new inputs. */
    diff(state: Props, inputs: Props): PropertyDiff[];
    /** In-place update; returns the new state (before the read-back). */
    update(ctx: FakeContext, id: string, state: Props, inputs: Props, diffs: PropertyDiff[]): Promise<Props>;
    delete(ctx: FakeContext, id: string, state: Props): Promise<void>;
}

/** Refuses keys outside `known`, naming them and the fake to teach. */
export function onlyKnownKeys(what: string, value: Props, known: readonly string[]): void {
    const unknown = Object.keys(value).filter((k) => value[k] !== undefined && !known.includes(k));
    if (unknown.length > 0) {
        throw new Error(`real-engine harness: ${what} input(s) ${unknown.map((k) => `"${k}"`).join(", ")} not modelled; teach its fake in test/support/providers/ what the provider does with them`);
    }
}

/** Terraform's zero values: a left-out Optional property and a stored zero value are the same. */
export function isEmpty(v: unknown): boolean {
    if (v === undefined || v === null || v === "" || v === 0 || v === false) return true;
    if (Array.isArray(v)) return v.length === 0;
    if (typeof v === "object") return Object.keys(v as object).length === 0;
    return false;
}

/** Stable JSON with sorted object keys, for comparing canonical values. */
export function stableJson(v: unknown): string {
    if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
    if (v !== null && typeof v === "object") {
        return `{${Object.keys(v as object)
            .filter((k) => (v as Props)[k] !== undefined)
            .sort()
            .map((k) => `${JSON.stringify(k)}:${stableJson((v as Props)[k])}`)
            .join(",")}}`;
    }
    return JSON.stringify(v);
}

/** A TypeSet: order does not count. */
export const asSet = (items: unknown[] | undefined): unknown[] => [...(items ?? [])].map(stableJson).sort();

/** The schema diff described at the top of this file. */
export function schemaDiff(schema: Schema, state: Props, inputs: Props): PropertyDiff[] {
    const diffs: PropertyDiff[] = [];
    for (const [property, rule] of Object.entries(schema)) {
        const next = inputs[property] ?? rule.default;
        const prev = state[property] ?? rule.default;
        if (inputs[property] === undefined && rule.computed) continue;
        const canon = (v: unknown) => (isEmpty(v) ? undefined : rule.canonical ? rule.canonical(v) : v);
        const a = canon(prev);
        const b = canon(next);
        if ((isEmpty(a) && isEmpty(b)) || stableJson(a) === stableJson(b)) continue;
        diffs.push({ property, kind: rule.forceNew ? "replace" : "update", old: prev, new: next });
    }
    return diffs;
}

/** One line per diff, e.g. `capabilities (replace): {"adds":["CHOWN"]} → {"adds":["CAP_CHOWN"]}`. */
export function formatDiffs(diffs: PropertyDiff[]): string {
    return diffs.map((d) => `${d.property} (${d.kind}): ${stableJson(d.old)} → ${stableJson(d.new)}`).join("; ");
}

/**
 * The provider's delete retry (`retry.StateChangeConf`, 30 s, 2 s apart): repeat while the error
 * matches `busy` (a network with endpoints, a volume in use); a 404 means already gone.
 */
export async function removeRetrying(remove: () => Promise<unknown>, busy: RegExp, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        try {
            await remove();
            return;
        } catch (e: any) {
            if (e?.statusCode === 404) return;
            if (!busy.test(String(e?.message)) || Date.now() > deadline) throw e;
            await new Promise((r) => setTimeout(r, 2000));
        }
    }
}
