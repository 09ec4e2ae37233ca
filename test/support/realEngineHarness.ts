/**
 * The real-engine harness: runs the real program (index.ts) with a stack's config under
 * `pulumi.runtime.setMocks`, where each resource is not mocked but applied for real by the fake of
 * its provider (test/support/providers/: one per resource type, each mirroring the provider's
 * create, read, diff, update and delete), and keeps a state between applies like the engine's
 * checkpoint.
 *
 * What an apply does, as `pulumi up` does it: for each resource the program registers, the fake
 * diffs the stored state (what the provider's Read returned after create) against the new inputs
 * with the provider's schema rules and the resource's `replaceOnChanges`; no diff is "same", a
 * ForceNew diff replaces (deleteBeforeReplace honoured: a fixed name fails otherwise, as for
 * real), another diff updates in place. Resources gone from the program are deleted, newest first.
 * With `refresh: true` it first reads every resource back from the engine (`pulumi up --refresh`).
 *
 * What it proves: the graph the program declares works on a real engine and host, and what the
 * providers would read back does not drift from what the program declares. What it does not: the
 * Pulumi engine itself and the providers' Go code — the fakes are models of them, checked against
 * their source (docs/provider-behaviour.md).
 *
 * Must be used from Jest: each apply loads a fresh copy of @pulumi/pulumi and the program
 * (jest.isolateModulesAsync), since the SDK keeps one program's state per module instance.
 */
import { jest } from "@jest/globals";
import Docker from "dockerode";
import * as path from "path";
import { REPO_ROOT } from "./mockProgram";
import { fakeFor } from "./providers";
import { closeDockerClients, dockerClientFor } from "./providers/dockerProvider";
import { FakeContext, formatDiffs, PropertyDiff, Props } from "./providers/fake";
import { asSecret, containsSecret, isSecretWrapper, reveal } from "./secrets";

export interface StateEntry {
    urn: string;
    type: string;
    name: string;
    id?: string;
    /** Inputs as the monitor passed them (secrets still wrapped). */
    inputs: Record<string, unknown>;
    /** The state returned to the program (secrets wrapped): the provider's stored state. */
    outputs: Record<string, unknown>;
    deleteBeforeReplace: boolean;
    /** The provider reference (`<urn>::<id>`) it was applied with; undefined for the default provider. */
    provider?: string;
    /** URNs of its explicit dependencies (dependsOn). */
    dependsOn: string[];
    /** Order of creation; teardown goes in reverse. */
    seq: number;
}

export interface Operation {
    op: "create" | "replace" | "update" | "same" | "delete";
    urn: string;
    type: string;
    name: string;
    /** Wall-clock ms when the operation started and finished. */
    startedAt: number;
    finishedAt: number;
    /** Why it was replaced or updated: the provider's property diffs. */
    diffs: PropertyDiff[];
}

export interface ApplyOptions {
    /** Stack name (the default namePrefix). */
    stack: string;
    /** The stack's config as the CLI passes it: `mmagent:key` → string (objects as JSON). */
    config: Record<string, string>;
    secretKeys?: string[];
    /** Read every resource back from the engine first, as `pulumi up --refresh` does. @default false */
    refresh?: boolean;
}

export interface ApplyResult {
    /** The program's exports, resolved and with secrets unwrapped. */
    outputs: Record<string, any>;
    /** Operations of this apply, in order of completion. */
    operations: Operation[];
    /** The operations that changed something, one line each with the property diffs. */
    changes: string[];
    durationMs: number;
}

const COMPONENT_PREFIX = "mmagent:";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class RealEngineHarness {
    readonly docker: Docker;
    /** URN → what was applied and is still there. */
    readonly state = new Map<string, StateEntry>();
    /** Every operation of every apply and destroy. */
    readonly operations: Operation[] = [];
    private seq = 0;
    /** The program's exports of the last apply (secrets wrapped): what a stack reference to this stack reads. */
    private lastOutputs: Record<string, unknown> = {};

    constructor(docker = new Docker()) {
        this.docker = docker;
    }

    private get ctx(): FakeContext {
        return { docker: this.docker, lastOutputs: this.lastOutputs };
    }

    /**
     * The context of a resource applied with an explicit provider: a docker resource talks to the
     * daemon its docker provider's config reaches (the local socket, or `ssh` for an ssh:// host).
     */
    private ctxFor(provider: string | undefined): FakeContext {
        if (!provider) return this.ctx;
        const urn = provider.slice(0, provider.lastIndexOf("::"));
        const entry = this.state.get(urn);
        if (!entry) throw new Error(`real-engine harness: provider ${urn} is not in the state`);
        if (entry.type !== "pulumi:providers:docker") return this.ctx;
        return { ...this.ctx, docker: dockerClientFor(reveal<Props>(entry.outputs), this.docker) };
    }

    /** Ends the provider fakes' connections (the `ssh` processes of ssh:// docker providers). */
    close(): void {
        closeDockerClients();
    }

    /** `pulumi refresh`: each resource's stored state becomes what its provider reads now; gone ones leave the state. */
    async refresh(): Promise<void> {
        for (const entry of [...this.state.values()]) {
            const fake = fakeFor(entry.type);
            const read = await fake.read(this.ctxFor(entry.provider), entry.id!, reveal(entry.outputs));
            if (read === undefined) this.state.delete(entry.urn);
            else entry.outputs = keepSecrets(entry.inputs, read, entry.outputs);
        }
    }

    async apply(opts: ApplyOptions): Promise<ApplyResult> {
        const started = Date.now();
        const opsBefore = this.operations.length;
        const seen = new Set<string>();
        const errors: Error[] = [];
        // A failed resource leaves the outputs that depend on it unresolved forever: stop waiting for them then.
        let failed: () => void = () => undefined;
        const firstError = new Promise<undefined>((res) => (failed = () => res(undefined)));
        const inFlight: Promise<unknown>[] = [];
        const registrations = new Map<string, Registration>();
        let exportsResolved: Record<string, any> = {};
        let exportsRaw: Record<string, unknown> = {};
        if (opts.refresh) await this.refresh();

        // The SDK keeps its run state on `global`; start each program from a clean slate.
        const g = global as any;
        g.globalStore = undefined;
        g.stackResource = undefined;

        await jest.isolateModulesAsync(async () => {
            const pulumi = await import("@pulumi/pulumi");
            await pulumi.runtime.setMocks(
                {
                    newResource: (args) => {
                        const reg = registrations.get(`${args.type}::${args.name}`);
                        if (!reg) throw new Error(`real-engine harness: no registration seen for ${args.type} ${args.name}`);
                        if (!args.custom) return { id: undefined, state: {} };
                        seen.add(reg.urn);
                        const work = this.applyResource(reg.urn, args.type, args.name, args.inputs, { ...reg, provider: args.provider || undefined });
                        inFlight.push(
                            work.catch((e: Error) => {
                                errors.push(new Error(`${args.type} ${args.name}: ${e.message}`));
                                failed();
                            }),
                        );
                        return work;
                    },
                    call: (args) => {
                        throw new Error(`real-engine harness: the program invoked ${args.token}; invokes are not translated`);
                    },
                },
                "mmagent",
                opts.stack,
                false,
                "organization",
            );
            const monitor = pulumi.runtime.getMonitor() as any;
            const register = monitor.registerResource.bind(monitor);
            monitor.registerResource = (req: any, callback: any) => {
                registrations.set(`${req.getType()}::${req.getName()}`, {
                    urn: monitor.newUrn(req.getParent(), req.getType(), req.getName()),
                    deleteBeforeReplace: req.getDeletebeforereplace(),
                    dependsOn: req.getDependenciesList(),
                    replaceOnChanges: req.getReplaceonchangesList(),
                });
                return register(req, callback);
            };
            // Reads (a StackReference) go through readResource, which carries no replace options.
            const read = monitor.readResource.bind(monitor);
            monitor.readResource = (req: any, callback: any) => {
                registrations.set(`${req.getType()}::${req.getName()}`, { urn: monitor.newUrn(req.getParent(), req.getType(), req.getName()), deleteBeforeReplace: false, dependsOn: [], replaceOnChanges: [] });
                return read(req, callback);
            };
            pulumi.runtime.setAllConfig(opts.config, opts.secretKeys);
            const program = await import(path.join(REPO_ROOT, "index.ts"));
            const resolved: Record<string, any> = {};
            const raw: Record<string, unknown> = {};
            for (const [k, v] of Object.entries(program)) {
                resolved[k] = pulumi.Output.isInstance(v)
                    ? await Promise.race([new Promise((res) => (v as any).apply((x: unknown) => res(x))).catch(() => undefined), firstError])
                    : v;
                const secret = pulumi.Output.isInstance(v) ? await (v as any).isSecret : false;
                raw[k] = secret ? asSecret(resolved[k]) : resolved[k];
            }
            exportsResolved = resolved;
            exportsRaw = raw;
        });

        // Wait until no resource is being applied and no new one starts.
        for (;;) {
            const n = inFlight.length;
            await Promise.allSettled(inFlight);
            await sleep(200);
            if (inFlight.length === n) break;
        }
        if (errors.length > 0) {
            throw new Error(`apply failed (${errors.length} resource(s)):\n${errors.map((e) => `  - ${e.message}`).join("\n")}`);
        }
        // Gone from the program: delete, newest first.
        for (const entry of [...this.state.values()].filter((e) => !seen.has(e.urn)).sort((a, b) => b.seq - a.seq)) {
            await this.deleteEntry(entry);
        }
        this.lastOutputs = exportsRaw;
        const operations = this.operations.slice(opsBefore);
        const changes = operations.filter((o) => o.op !== "same").map((o) => `${o.op} ${o.name}${o.diffs.length > 0 ? `: ${formatDiffs(o.diffs)}` : ""}`);
        return { outputs: exportsResolved, operations, changes, durationMs: Date.now() - started };
    }

    /** Removes everything applied, in reverse order of creation. */
    async destroy(): Promise<Operation[]> {
        const before = this.operations.length;
        for (const entry of [...this.state.values()].sort((a, b) => b.seq - a.seq)) await this.deleteEntry(entry);
        return this.operations.slice(before);
    }

    /** Entries of one resource type. */
    entries(type: string): StateEntry[] {
        return [...this.state.values()].filter((e) => e.type === type);
    }

    entry(type: string, name: string): StateEntry {
        const found = this.entries(type).filter((e) => e.name === name);
        if (found.length !== 1) throw new Error(`expected one ${type} named ${name} in the harness state, found ${found.length}`);
        return found[0];
    }

    private record(op: Operation["op"], urn: string, type: string, name: string, startedAt: number, diffs: PropertyDiff[] = []): void {
        this.operations.push({ op, urn, type, name, startedAt, finishedAt: Date.now(), diffs });
    }

    private async applyResource(urn: string, type: string, name: string, inputs: Record<string, unknown>, reg: Registration) {
        const startedAt = Date.now();
        const prev = this.state.get(urn);
        if (type.startsWith(COMPONENT_PREFIX)) throw new Error(`component ${type} registered as custom`);
        const fake = fakeFor(type);
        const plain = reveal<Props>(inputs);
        fake.check(plain);
        const ctx = this.ctxFor(reg.provider);

        const keep = (id: string | undefined, state: Props, op: Operation["op"], diffs: PropertyDiff[] = []) => {
            const outputs = keepSecrets(inputs, state, prev?.outputs);
            const entry: StateEntry = {
                urn, type, name, id, inputs, outputs,
                deleteBeforeReplace: reg.deleteBeforeReplace, provider: reg.provider, dependsOn: reg.dependsOn,
                seq: op === "same" || op === "update" ? prev!.seq : ++this.seq,
            };
            this.state.set(urn, entry);
            this.record(op, urn, type, name, startedAt, diffs);
            return { id, state: outputs };
        };
        // Create ends with the provider's Read: the state is what was read back.
        const createAndRead = async () => {
            const created = await fake.create(ctx, plain);
            const read = await fake.read(ctx, created.id, created.state);
            if (read === undefined) throw new Error(`${type} ${name}: gone right after create`);
            return { id: created.id, state: read };
        };

        if (!prev) {
            const c = await createAndRead();
            return keep(c.id, c.state, "create");
        }
        const stored = reveal<Props>(prev.outputs);
        const diffs = fake.diff(stored, plain).map((d) => (reg.replaceOnChanges.includes(d.property) || reg.replaceOnChanges.includes("*") ? { ...d, kind: "replace" as const } : d));
        if (diffs.length === 0) return keep(prev.id, stored, "same");
        if (diffs.some((d) => d.kind === "replace")) {
            // A fixed name cannot exist twice: without deleteBeforeReplace the create fails, as it would for real.
            if (reg.deleteBeforeReplace) await fake.delete(ctx, prev.id!, stored);
            const c = await createAndRead();
            if (!reg.deleteBeforeReplace) await fake.delete(ctx, prev.id!, stored);
            return keep(c.id, c.state, "replace", diffs);
        }
        const updated = await fake.update(ctx, prev.id!, stored, plain, diffs);
        return keep(prev.id, updated, "update", diffs);
    }

    private async deleteEntry(entry: StateEntry): Promise<void> {
        const startedAt = Date.now();
        await fakeFor(entry.type).delete(this.ctxFor(entry.provider), entry.id!, reveal(entry.outputs));
        this.state.delete(entry.urn);
        this.record("delete", entry.urn, entry.type, entry.name, startedAt);
    }
}

interface Registration {
    urn: string;
    /** The provider reference from the registration, when one was given. */
    provider?: string;
    deleteBeforeReplace: boolean;
    dependsOn: string[];
    replaceOnChanges: string[];
}

/** A stored property stays wrapped as secret when its input, or its earlier stored value, was (or contained) a secret. */
function keepSecrets(inputs: Record<string, unknown>, state: Props, prior: Record<string, unknown> = {}): Record<string, unknown> {
    const secret = (k: string) => containsSecret(inputs[k]) || containsSecret(prior[k]);
    return Object.fromEntries(Object.entries(state).map(([k, v]) => [k, secret(k) && !isSecretWrapper(v) ? asSecret(reveal(v)) : v]));
}

/** Every string in a value that is not inside a secret wrapper, with where it is. */
export function plainStrings(value: unknown, at = ""): { at: string; text: string }[] {
    if (isSecretWrapper(value)) return [];
    if (typeof value === "string") return [{ at, text: value }];
    if (Array.isArray(value)) return value.flatMap((v, i) => plainStrings(v, `${at}[${i}]`));
    if (value !== null && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => plainStrings(v, at ? `${at}.${k}` : k));
    return [];
}
