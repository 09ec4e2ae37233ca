/**
 * The real-engine harness: runs the real program (index.ts) with a stack's config under
 * `pulumi.runtime.setMocks`, where each resource is not mocked but applied for real — Docker
 * networks, volumes and containers through the Docker API (dockerode), local Commands by running
 * their `create` (or `update`) with their stdin and environment, RandomPassword/RandomId by
 * generating them — and keeps a state between applies, so a second `apply` with changed config
 * replaces what changed, like `pulumi up` would, and `destroy` removes everything in reverse order.
 *
 * What it proves: the graph the program declares (inputs, dependencies, ordering through
 * dependsOn and outputs) works on a real engine and host. What it does not: the Pulumi engine's
 * own diff, replace and update logic, and the providers' code. Here a resource is "the same"
 * when its inputs are equal, any other change replaces it (Commands: a `triggers` change
 * replaces, another input change runs `update`), and deleteBeforeReplace is honoured.
 *
 * Must be used from Jest: each apply loads a fresh copy of @pulumi/pulumi and the program
 * (jest.isolateModulesAsync), since the SDK keeps one program's state per module instance.
 */
import { jest } from "@jest/globals";
import { spawn } from "child_process";
import * as crypto from "crypto";
import Docker from "dockerode";
import * as path from "path";
import * as tar from "tar-stream";
import { containerPlan, localCommandPlan, networkCreate, volumeCreate } from "./dockerTranslate";
import { REPO_ROOT } from "./mockProgram";
import { asSecret, isSecretWrapper, reveal } from "./secrets";

export interface StateEntry {
    urn: string;
    type: string;
    name: string;
    id?: string;
    /** Inputs as the monitor passed them (secrets still wrapped). */
    inputs: Record<string, unknown>;
    /** The state returned to the program (secrets wrapped). */
    outputs: Record<string, unknown>;
    deleteBeforeReplace: boolean;
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
}

export interface ApplyOptions {
    /** Stack name (the default namePrefix). */
    stack: string;
    /** The stack's config as the CLI passes it: `mmagent:key` → string (objects as JSON). */
    config: Record<string, string>;
    secretKeys?: string[];
}

export interface ApplyResult {
    /** The program's exports, resolved and with secrets unwrapped. */
    outputs: Record<string, any>;
    /** Operations of this apply, in order of completion. */
    operations: Operation[];
    durationMs: number;
}

const COMPONENT_PREFIX = "mmagent:";
const same = (a: unknown, b: unknown) => JSON.stringify(reveal(a)) === JSON.stringify(reveal(b));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class RealEngineHarness {
    readonly docker: Docker;
    /** URN → what was applied and is still there. */
    readonly state = new Map<string, StateEntry>();
    /** Every operation of every apply and destroy. */
    readonly operations: Operation[] = [];
    private seq = 0;

    constructor(docker = new Docker()) {
        this.docker = docker;
    }

    async apply(opts: ApplyOptions): Promise<ApplyResult> {
        const started = Date.now();
        const opsBefore = this.operations.length;
        const seen = new Set<string>();
        const errors: Error[] = [];
        const inFlight: Promise<unknown>[] = [];
        const registrations = new Map<string, { urn: string; deleteBeforeReplace: boolean; dependsOn: string[] }>();
        let exportsResolved: Record<string, any> = {};

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
                        const work = this.applyResource(reg.urn, args.type, args.name, args.inputs, reg);
                        inFlight.push(work.catch((e: Error) => errors.push(new Error(`${args.type} ${args.name}: ${e.message}`))));
                        return work;
                    },
                    call: (args) => {
                        throw new Error(`real-engine harness: the program invoked ${args.token}; invokes are not translated`);
                    },
                },
                "mmagent",
                opts.stack,
                false,
            );
            const monitor = pulumi.runtime.getMonitor() as any;
            const register = monitor.registerResource.bind(monitor);
            monitor.registerResource = (req: any, callback: any) => {
                registrations.set(`${req.getType()}::${req.getName()}`, {
                    urn: monitor.newUrn(req.getParent(), req.getType(), req.getName()),
                    deleteBeforeReplace: req.getDeletebeforereplace(),
                    dependsOn: req.getDependenciesList(),
                });
                return register(req, callback);
            };
            pulumi.runtime.setAllConfig(opts.config, opts.secretKeys);
            const program = await import(path.join(REPO_ROOT, "index.ts"));
            const resolved: Record<string, any> = {};
            for (const [k, v] of Object.entries(program)) {
                resolved[k] = pulumi.Output.isInstance(v)
                    ? await new Promise((res) => (v as any).apply((x: unknown) => res(x))).catch(() => undefined)
                    : v;
            }
            exportsResolved = resolved;
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
        return { outputs: exportsResolved, operations: this.operations.slice(opsBefore), durationMs: Date.now() - started };
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

    private record(op: Operation["op"], urn: string, type: string, name: string, startedAt: number): void {
        this.operations.push({ op, urn, type, name, startedAt, finishedAt: Date.now() });
    }

    private async applyResource(urn: string, type: string, name: string, inputs: Record<string, unknown>, reg: { deleteBeforeReplace: boolean; dependsOn: string[] }) {
        const { deleteBeforeReplace, dependsOn } = reg;
        const startedAt = Date.now();
        const prev = this.state.get(urn);
        if (type.startsWith(COMPONENT_PREFIX)) throw new Error(`component ${type} registered as custom`);

        const keep = (id: string | undefined, outputs: Record<string, unknown>, op: Operation["op"]) => {
            const entry: StateEntry = { urn, type, name, id, inputs, outputs, deleteBeforeReplace, dependsOn, seq: op === "same" || op === "update" ? prev!.seq : ++this.seq };
            this.state.set(urn, entry);
            this.record(op, urn, type, name, startedAt);
            return { id, state: outputs };
        };
        if (prev && same(prev.inputs, inputs)) return keep(prev.id, prev.outputs, "same");

        switch (type) {
            case "pulumi:providers:docker": {
                const host = reveal(inputs.host);
                if (host !== "unix:///var/run/docker.sock") throw new Error(`only the local engine is translated, not ${String(host)}`);
                if (inputs.sshOpts !== undefined) throw new Error("sshOpts not translated");
                return keep(undefined, { ...inputs }, prev ? "replace" : "create");
            }
            case "random:index/randomPassword:RandomPassword": {
                const i = reveal<Record<string, any>>(inputs);
                const unknown = Object.keys(i).filter((k) => !["length", "special"].includes(k));
                if (unknown.length > 0) throw new Error(`RandomPassword input(s) ${unknown.join(", ")} not translated`);
                const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" + (i.special === false ? "" : "!#$%&*()-_=+[]{}<>:?");
                const result = Array.from({ length: i.length }, () => alphabet[crypto.randomInt(alphabet.length)]).join("");
                return keep(`pw-${this.seq + 1}`, { ...inputs, result: asSecret(result) }, prev ? "replace" : "create");
            }
            case "random:index/randomId:RandomId": {
                const i = reveal<Record<string, any>>(inputs);
                const unknown = Object.keys(i).filter((k) => !["byteLength", "keepers"].includes(k));
                if (unknown.length > 0) throw new Error(`RandomId input(s) ${unknown.join(", ")} not translated`);
                const bytes = crypto.randomBytes(i.byteLength);
                const b64Url = bytes.toString("base64url");
                const outputs = { ...inputs, hex: bytes.toString("hex"), b64Std: bytes.toString("base64"), b64Url, dec: BigInt(`0x${bytes.toString("hex")}`).toString() };
                return keep(b64Url, outputs, prev ? "replace" : "create");
            }
            case "command:local:Command": {
                const plan = localCommandPlan(inputs);
                const replaced = prev && !same(prev.inputs.triggers, inputs.triggers);
                const script = prev && !replaced ? (plan.update ?? plan.create) : plan.create;
                const { stdout, stderr } = await runLocal(plan.interpreter, script, plan.stdin, plan.environment);
                return keep(prev?.id ?? `cmd-${crypto.randomUUID()}`, { ...inputs, stdout, stderr }, !prev ? "create" : replaced ? "replace" : "update");
            }
            case "docker:index/network:Network": {
                const body = networkCreate(inputs);
                if (prev) await this.removeDocker(prev);
                const net = await this.docker.createNetwork(body);
                return keep(net.id, { ...inputs }, prev ? "replace" : "create");
            }
            case "docker:index/volume:Volume": {
                const body = volumeCreate(inputs);
                if (prev) await this.removeDocker(prev);
                await this.docker.createVolume(body);
                const vol = await this.docker.getVolume(body.Name!).inspect();
                return keep(vol.Name, { ...inputs, mountpoint: vol.Mountpoint }, prev ? "replace" : "create");
            }
            case "docker:index/container:Container": {
                const plan = containerPlan(inputs);
                // A fixed name cannot exist twice: without deleteBeforeReplace the create fails, as it would for real.
                if (prev && deleteBeforeReplace) await this.removeDocker(prev);
                const id = await this.createContainer(plan);
                if (prev && !deleteBeforeReplace) await this.removeDocker(prev);
                return keep(id, { ...inputs }, prev ? "replace" : "create");
            }
            default:
                throw new Error(`resource type ${type} is not translated by the real-engine harness`);
        }
    }

    private async createContainer(plan: ReturnType<typeof containerPlan>): Promise<string> {
        try {
            await this.docker.getImage(plan.create.Image!).inspect();
        } catch {
            throw new Error(`image ${plan.create.Image} is not on the engine (no registry here: build it first)`);
        }
        const container = await this.docker.createContainer(plan.create);
        if (plan.uploads.length > 0) await container.putArchive(await tarOf(plan.uploads), { path: "/" });
        await container.start();
        if (plan.waitSeconds !== undefined) await waitHealthy(container, plan.waitSeconds);
        return container.id;
    }

    private async removeDocker(entry: StateEntry): Promise<void> {
        const ignoreMissing = (e: any) => {
            if (e?.statusCode !== 404) throw e;
        };
        if (entry.type === "docker:index/container:Container") {
            const c = this.docker.getContainer(entry.id!);
            await c.stop({ t: 10 }).catch((e: any) => (e?.statusCode === 304 ? undefined : ignoreMissing(e)));
            await c.remove({ force: true }).catch(ignoreMissing);
        } else if (entry.type === "docker:index/network:Network") {
            await this.docker.getNetwork(entry.id!).remove().catch(ignoreMissing);
        } else if (entry.type === "docker:index/volume:Volume") {
            await this.docker.getVolume(entry.id!).remove().catch(ignoreMissing);
        }
        // Commands here have no `delete` (the translator refuses one); random values and providers only leave the state.
    }

    private async deleteEntry(entry: StateEntry): Promise<void> {
        const startedAt = Date.now();
        await this.removeDocker(entry);
        this.state.delete(entry.urn);
        this.record("delete", entry.urn, entry.type, entry.name, startedAt);
    }
}

async function tarOf(files: { file: string; content: string }[]): Promise<Buffer> {
    const pack = tar.pack();
    for (const f of files) pack.entry({ name: f.file.replace(/^\/+/, ""), mode: 0o644 }, f.content);
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of pack) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
}

async function waitHealthy(container: Docker.Container, seconds: number): Promise<void> {
    const deadline = Date.now() + seconds * 1000;
    let last: any;
    while (Date.now() < deadline) {
        last = await container.inspect();
        const health = last.State?.Health?.Status;
        if (health === "healthy") return;
        if (!last.Config?.Healthcheck && last.State?.Running) return;
        await sleep(250);
    }
    const log = (last?.State?.Health?.Log ?? []).slice(-2).map((l: any) => `exit ${l.ExitCode}: ${String(l.Output).trim()}`);
    throw new Error(`container ${last?.Name} not healthy within ${seconds}s (state ${last?.State?.Status}, health ${last?.State?.Health?.Status}); last checks: ${log.join(" | ")}`);
}

function runLocal(interpreter: string[], script: string, stdin: string | undefined, environment: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
        const child = spawn(interpreter[0], [...interpreter.slice(1), script], { env: { ...process.env, ...environment }, stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("error", reject);
        child.on("close", (code) => {
            // Like the command provider: a trailing newline is not part of the output.
            if (code === 0) resolve({ stdout: stdout.replace(/\n$/, ""), stderr: stderr.replace(/\n$/, "") });
            else reject(new Error(`command exited ${code}: ${stderr.trim().split("\n").slice(-5).join(" | ")}`));
        });
        child.stdin.end(stdin ?? "");
    });
}

/** Every string in a value that is not inside a secret wrapper, with where it is. */
export function plainStrings(value: unknown, at = ""): { at: string; text: string }[] {
    if (isSecretWrapper(value)) return [];
    if (typeof value === "string") return [{ at, text: value }];
    if (Array.isArray(value)) return value.flatMap((v, i) => plainStrings(v, `${at}[${i}]`));
    if (value !== null && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => plainStrings(v, at ? `${at}.${k}` : k));
    return [];
}
