#!/usr/bin/env node
/**
 * The operator's CLI for a deployed stack (`npm run mmagent -- <command>`):
 *
 *   mmagent status [--stack S] [--json | --prometheus] [--output FILE] [--threshold PCT] [--identity FILE]
 *   mmagent rollback <role> [<snapshot>] [--stack S] [--yes] [--identity FILE]
 *
 * It reads the stack's config from `Pulumi.<stack>.yaml` (validated by the program's own parser)
 * and reaches the host the way the program does (hostRun.ts). `status` changes nothing; exit 1
 * when something needs attention, 2 on a usage or config error. `rollback` changes only the
 * stack's config, through the Pulumi CLI, then previews (or, with --yes, applies).
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { hostRunner, scriptJson } from "./hostRun";
import { configAfter, planRollback, rollbackTarget } from "./rollback";
import { chooseStack, CliError, findProjectDir, readStackFiles, StackFiles } from "./stackFiles";
import { collectStatus, renderPrometheus, renderTable, StorageListing, summarizeStatus } from "./status";

export const USAGE = `usage:
  mmagent status [--stack S] [--json | --prometheus] [--output FILE] [--threshold PCT] [--identity FILE]
      The stack's containers (state, health, image and digest), volumes (use, quota, snapshots,
      days until full) and Docker's storage driver. Read-only. Exit 1 when something needs
      attention (a container not running or unhealthy, a volume at or above --threshold, default 85).
      --prometheus writes the node-exporter textfile format; --output writes to FILE atomically.
  mmagent rollback <role> [<snapshot>] [--stack S] [--yes] [--identity FILE]
      Sets services.<role>.image (by digest) and services.<role>.restoreFrom to a pre-change
      snapshot (default: the latest) with \`pulumi config set\`, then runs \`pulumi preview --diff\`.
      --yes runs \`pulumi up --yes\` instead. Roles: inference, agent, cache, vectorDb.
`;

export interface CliIo {
    stdout: (text: string) => void;
    stderr: (text: string) => void;
    cwd: string;
    env: NodeJS.ProcessEnv;
    now: () => number;
}

interface ParsedArgs {
    command: string;
    positional: string[];
    flags: Record<string, string | true>;
}

const VALUE_FLAGS = new Set(["stack", "output", "threshold", "identity"]);
const BOOLEAN_FLAGS: Record<string, Set<string>> = { status: new Set(["json", "prometheus"]), rollback: new Set(["yes"]) };

export function parseArgs(argv: string[]): ParsedArgs {
    const [command = "", ...rest] = argv;
    if (command === "" || command === "--help" || command === "-h" || command === "help") return { command: "help", positional: [], flags: {} };
    if (!(command in BOOLEAN_FLAGS)) throw new CliError(`unknown command "${command}"\n${USAGE}`);
    const positional: string[] = [];
    const flags: Record<string, string | true> = {};
    for (let i = 0; i < rest.length; i++) {
        const a = rest[i];
        if (!a.startsWith("--")) {
            positional.push(a);
            continue;
        }
        const [name, inline] = a.slice(2).split(/=(.*)/s, 2);
        if (VALUE_FLAGS.has(name)) {
            const value = inline ?? rest[++i];
            if (value === undefined || value === "") throw new CliError(`--${name} needs a value`);
            flags[name] = value;
        } else if (BOOLEAN_FLAGS[command].has(name) && inline === undefined) {
            flags[name] = true;
        } else {
            throw new CliError(`unknown option --${name} for ${command}\n${USAGE}`);
        }
    }
    return { command, positional, flags };
}

/** The Pulumi CLI: $MMAGENT_PULUMI, else the one `npm run up` installed, else `pulumi` on PATH. */
export function pulumiCommand(projectDir: string, env: NodeJS.ProcessEnv): string {
    if (env.MMAGENT_PULUMI) return env.MMAGENT_PULUMI;
    const installed = path.join(projectDir, ".pulumi-cli", "bin", "pulumi");
    return fs.existsSync(installed) ? installed : "pulumi";
}

function runPulumi(files: StackFiles, io: CliIo, args: string[], capture: boolean): Promise<{ code: number; stdout: string }> {
    const cmd = pulumiCommand(files.projectDir, io.env);
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, [...args, "--stack", files.stack], { cwd: files.projectDir, env: io.env, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        child.stdout.on("data", (d) => {
            if (capture) stdout += d;
            else io.stdout(String(d));
        });
        child.stderr.on("data", (d) => io.stderr(String(d)));
        child.on("error", (e) => reject(new CliError(`could not run the Pulumi CLI (${cmd}): ${e.message}; npm run up installs it, or set MMAGENT_PULUMI`)));
        child.on("close", (code) => resolve({ code: code ?? 1, stdout }));
    });
}

async function openHost(files: StackFiles, io: CliIo, identity: string | undefined) {
    return hostRunner(files.config.host.connection, {
        identityFile: identity,
        project: files.project,
        stack: files.stack,
        hostName: `${files.config.namePrefix}-host`,
        env: io.env,
        secretKey: files.hasSshPrivateKey
            ? async () => {
                  const r = await runPulumi(files, io, ["config", "get", "sshPrivateKey"], true);
                  return r.code === 0 ? r.stdout : undefined;
              }
            : undefined,
    });
}

function writeAtomically(file: string, text: string): void {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
}

async function status(args: ParsedArgs, io: CliIo): Promise<number> {
    if (args.positional.length > 0) throw new CliError(`status takes no arguments (got ${args.positional.join(" ")})`);
    if (args.flags.json && args.flags.prometheus) throw new CliError("--json and --prometheus exclude each other");
    const threshold = args.flags.threshold === undefined ? 85 : Number(args.flags.threshold);
    if (!Number.isFinite(threshold) || threshold <= 0 || threshold > 100) throw new CliError(`--threshold must be a percentage from 1 to 100 (got ${args.flags.threshold})`);
    const projectDir = findProjectDir(io.cwd);
    const files = readStackFiles(projectDir, chooseStack(projectDir, args.flags.stack as string | undefined), io.env, { identityFile: args.flags.identity as string | undefined });
    const host = await openHost(files, io, args.flags.identity as string | undefined);
    try {
        const { engine, storage } = await collectStatus(files.config, host.runner);
        const report = summarizeStatus(files.config, engine, storage, { stack: files.stack, now: io.now(), thresholdPercent: threshold });
        const text = args.flags.json ? JSON.stringify(report, null, 2) + "\n" : args.flags.prometheus ? renderPrometheus(report) : renderTable(report);
        if (args.flags.output) writeAtomically(args.flags.output as string, text);
        else io.stdout(text);
        return report.ok ? 0 : 1;
    } finally {
        host.close();
    }
}

async function rollback(args: ParsedArgs, io: CliIo): Promise<number> {
    const [role, snapshot, ...extra] = args.positional;
    if (!role) throw new CliError(`rollback needs a role\n${USAGE}`);
    if (extra.length > 0) throw new CliError(`rollback takes a role and at most one snapshot (got ${args.positional.join(" ")})`);
    const projectDir = findProjectDir(io.cwd);
    const files = readStackFiles(projectDir, chooseStack(projectDir, args.flags.stack as string | undefined), io.env, { identityFile: args.flags.identity as string | undefined });
    // Refusals that need no host come first.
    const target = rollbackTarget(files.config, role, snapshot);
    const host = await openHost(files, io, args.flags.identity as string | undefined);
    let listing: StorageListing;
    try {
        listing = scriptJson<StorageListing>(
            "storage.sh list",
            await host.runner("storage", {
                MMAGENT_ACTION: "list",
                MMAGENT_BACKEND: files.config.storage.backend,
                MMAGENT_ROOT: files.config.storage.root,
                MMAGENT_VOLUMES: target.volumes.join(" "),
            }),
        );
    } finally {
        host.close();
    }
    const plan = planRollback(files.config, role, listing, snapshot);
    // The program's own validation of the result, before the config is touched.
    configAfter(files.raw as Record<string, unknown>, plan, { stackName: files.stack, projectDir, hasSshPrivateKey: files.hasSshPrivateKey, environment: io.env });
    io.stdout(
        `rolling ${plan.role} back to snapshot ${plan.snapshot.name} (taken ${plan.snapshot.createdAt}, before ${plan.snapshot.nextImage || "a change"})\n` +
            `  data: restored from ${plan.snapshot.name}; image: ${plan.image}\n`,
    );
    for (const n of plan.notes) io.stdout(`  note: ${n}\n`);
    for (const s of plan.configSets) {
        const r = await runPulumi(files, io, ["config", "set", "--path", s.key, s.value], false);
        if (r.code !== 0) throw new CliError(`pulumi config set ${s.key} failed (exit ${r.code}); the stack's config may be half changed: check ${files.configFile}`);
    }
    const final = args.flags.yes ? ["up", "--yes", "--diff"] : ["preview", "--diff"];
    io.stdout(`$ pulumi ${final.join(" ")} --stack ${files.stack}\n`);
    const r = await runPulumi(files, io, final, false);
    if (!args.flags.yes && r.code === 0) io.stdout(`reviewed? apply with: mmagent rollback ${plan.role} ${plan.snapshot.name} --stack ${files.stack} --yes (or pulumi up)\n`);
    return r.code === 0 ? 0 : 1;
}

/** Runs one command; returns the exit code. Errors are printed, never thrown. */
export async function main(argv: string[], io: CliIo): Promise<number> {
    try {
        const args = parseArgs(argv);
        if (args.command === "help") {
            io.stdout(USAGE);
            return 0;
        }
        return args.command === "status" ? await status(args, io) : await rollback(args, io);
    } catch (e) {
        const err = e as Error;
        if (err instanceof CliError || err.name === "InputPropertiesError" || /InputPropertiesError/.test(err.constructor?.name ?? "")) {
            io.stderr(`mmagent: ${err.message}\n`);
            return 2;
        }
        io.stderr(`mmagent: ${err.stack ?? err.message}\n`);
        return 2;
    }
}

if (require.main === module) {
    main(process.argv.slice(2), {
        stdout: (t) => process.stdout.write(t),
        stderr: (t) => process.stderr.write(t),
        cwd: process.cwd(),
        env: process.env,
        now: () => Date.now(),
    }).then((code) => (process.exitCode = code));
}
