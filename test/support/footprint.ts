/**
 * What a preview would touch, computed under mocks: the real program (index.ts) evaluated with a
 * stack's config in a fresh module registry each time (the SDK's module state is per import, see
 * mockProgram.ts), its registered resources serialized deterministically, and two evaluations
 * compared resource by resource.
 *
 * "Changed" means: the resource's registered inputs differ (compared as canonical JSON: object
 * keys sorted, as Pulumi compares property maps; arrays and strings byte for byte), or the
 * resource exists in only one evaluation. Resource options (parent, dependsOn,
 * deleteBeforeReplace, replaceOnChanges) and which inputs are secret are part of `recordText`,
 * which the determinism check compares, but not of the footprint.
 */
import type { MockRun, RecordedResource, RunOptions } from "./mockProgram";

/** JSON with object keys sorted at every depth; `undefined` members dropped as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
    return JSON.stringify(sortKeys(value));
}

function sortKeys(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (v !== null && typeof v === "object") {
        const out: Record<string, unknown> = {};
        for (const k of Object.keys(v as Record<string, unknown>).sort()) out[k] = sortKeys((v as Record<string, unknown>)[k]);
        return out;
    }
    return v;
}

/** Everything the program declares about one resource, canonical: inputs, secrecy, parent, options. */
export function recordText(r: RecordedResource): string {
    return canonicalJson({
        urn: r.urn,
        inputs: r.inputs,
        secretInputs: [...r.secretInputs].sort(),
        parentUrn: r.parentUrn,
        dependsOnUrns: [...r.dependsOnUrns].sort(),
        deleteBeforeReplace: r.deleteBeforeReplace,
        replaceOnChanges: [...r.replaceOnChanges].sort(),
    });
}

/** A whole evaluation as one string: every resource's `recordText`, one a line, sorted by URN. */
export function evaluationText(run: MockRun): string {
    return [...run.resources].sort((a, b) => (a.urn < b.urn ? -1 : a.urn > b.urn ? 1 : 0)).map(recordText).join("\n");
}

/**
 * Evaluates the program once in a fresh module registry (a fresh @pulumi/pulumi, mockProgram and
 * index.ts), so a test file can evaluate it as often as it needs.
 */
export async function evaluateFresh(opts: RunOptions): Promise<MockRun> {
    let run: MockRun | undefined;
    await jest.isolateModulesAsync(async () => {
        const mock: typeof import("./mockProgram") = await import("./mockProgram");
        ({ run } = await mock.runProgram(opts));
    });
    if (!run) throw new Error("the program did not evaluate");
    return run;
}

/** One changed resource: its URN and the top-level input names whose values differ. */
export interface Change {
    urn: string;
    /** Sorted; `["(added)"]` or `["(removed)"]` when the resource is in one evaluation only. */
    inputs: string[];
}

/** The resources whose registered inputs differ between two evaluations, sorted by URN. */
export function footprint(before: MockRun, after: MockRun): Change[] {
    const index = (run: MockRun) => {
        const m = new Map<string, RecordedResource>();
        for (const r of run.resources) {
            if (m.has(r.urn)) throw new Error(`registered twice: ${r.urn}`);
            m.set(r.urn, r);
        }
        return m;
    };
    const a = index(before);
    const b = index(after);
    const changes: Change[] = [];
    for (const urn of [...new Set([...a.keys(), ...b.keys()])].sort()) {
        const x = a.get(urn);
        const y = b.get(urn);
        if (!x) changes.push({ urn, inputs: ["(added)"] });
        else if (!y) changes.push({ urn, inputs: ["(removed)"] });
        else {
            const keys = [...new Set([...Object.keys(x.inputs), ...Object.keys(y.inputs)])].sort();
            const differ = keys.filter((k) => canonicalJson(x.inputs[k]) !== canonicalJson(y.inputs[k]));
            if (differ.length > 0) changes.push({ urn, inputs: differ });
        }
    }
    return changes;
}

/** An expected changed resource, named the way tests read it: its own type and name. */
export interface ExpectedChange {
    type: string;
    name: string;
    /** The top-level inputs expected to differ; omitted: whichever. */
    inputs?: string[];
}

/**
 * The expected changes as `footprint` reports them: each entry resolved to its URN in either
 * evaluation (a resource that only one of them registers is found too). An entry neither
 * evaluation registers stays as `(not registered) <type>::<name>`, which never matches, so the
 * failure names it.
 */
export function expectedFootprint(expected: ExpectedChange[], before: MockRun, after: MockRun, actual: Change[]): Change[] {
    const all = [...before.resources, ...after.resources];
    return expected
        .map((e) => {
            const urns = [...new Set(all.filter((r) => r.type === e.type && r.name === e.name).map((r) => r.urn))];
            if (urns.length !== 1) return { urn: `(not registered) ${e.type}::${e.name}`, inputs: e.inputs ?? [] };
            const urn = urns[0];
            // Without `inputs`, accept whichever inputs changed.
            return { urn, inputs: e.inputs ?? actual.find((c) => c.urn === urn)?.inputs ?? ["(any)"] };
        })
        .sort((x, y) => (x.urn < y.urn ? -1 : x.urn > y.urn ? 1 : 0));
}
