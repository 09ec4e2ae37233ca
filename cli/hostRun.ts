/**
 * Runs one of the project's host scripts the way a deployment does (hostScript.ts: the same
 * rendered program on stdin, the same `RUN_STDIN_SCRIPT`, sudo for a non-root user), locally or
 * over SSH with the stack's pinned host key and nothing else trusted.
 *
 * Over SSH this uses the system `ssh` client with the options the Docker provider gets
 * (dockerSsh.ts `dockerSshOpts`: no ssh config, no agent, only the given key, only the pinned
 * host key, never a prompt), with the key from, in order: `--identity FILE`; the client directory
 * the program wrote for the Docker provider on this machine (`~/.mmagent/ssh/<project>.<stack>.<prefix>-host`);
 * the stack's `sshPrivateKey` secret as `pulumi config get` prints it.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { defaultDockerSshDir, dockerSshOpts, expandHome, SSH_KEY_FILE, writeDockerSshFiles } from "../components/dockerSsh";
import { HostScriptName, renderScriptStdin, RUN_STDIN_SCRIPT } from "../components/hostScript";
import { HostConnection } from "../components/types";
import { CliError } from "./stackFiles";

export interface ScriptRun {
    stdout: string;
    stderr: string;
    code: number;
}

/** Runs a rendered host program; resolves with its output whatever the exit code. */
export type HostRunner = (script: HostScriptName, params: Record<string, string>) => Promise<ScriptRun>;

function run(cmd: string, args: string[], stdin: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ScriptRun> {
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, args, { env, stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("error", (e) => {
            clearTimeout(timer);
            reject(new CliError(`could not run ${cmd}: ${e.message}`));
        });
        child.on("close", (code, signal) => {
            clearTimeout(timer);
            resolve({ stdout, stderr, code: code ?? (signal ? 128 : 1) });
        });
        child.stdin.on("error", () => undefined); // a script that exits early closes its stdin
        child.stdin.end(stdin);
    });
}

export interface HostRunnerOptions {
    /** A private key file for SSH. @default the program's client directory, else the stack's secret */
    identityFile?: string;
    /** The stack's `sshPrivateKey` secret, asked for only when needed. @default none */
    secretKey?: () => Promise<string | undefined>;
    /** Project and stack name: find the program's SSH client directory. */
    project: string;
    stack: string;
    /** The NvidiaHost's name (`<prefix>-host`). */
    hostName: string;
    /** @default 120000 */
    timeoutMs?: number;
    /** The `ssh` binary. @default "ssh" */
    sshCommand?: string;
    /** @default process.env */
    env?: NodeJS.ProcessEnv;
}

/** A runner for the stack's host: `/bin/sh -c` here, or `ssh` with the pinned host key. */
export async function hostRunner(connection: HostConnection, opts: HostRunnerOptions): Promise<{ runner: HostRunner; close: () => void }> {
    const env = opts.env ?? process.env;
    const timeoutMs = opts.timeoutMs ?? 120_000;
    if (connection.kind === "local") {
        return {
            runner: (script, params) => run("/bin/sh", ["-c", RUN_STDIN_SCRIPT], renderScriptStdin(script, params), env, timeoutMs),
            close: () => undefined,
        };
    }
    let dir: string;
    let temporary = false;
    const programDir = expandHome(defaultDockerSshDir(opts.project, opts.stack, opts.hostName));
    if (opts.identityFile) {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-cli-ssh."));
        temporary = true;
        writeDockerSshFiles({ dir, privateKey: fs.readFileSync(opts.identityFile, "utf8"), connection });
    } else if (fs.existsSync(path.join(programDir, SSH_KEY_FILE))) {
        // Written by the last `pulumi up` on this machine; its known_hosts line is rewritten from
        // the config below, so a changed hostKey is what is trusted, never an older one.
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-cli-ssh."));
        temporary = true;
        writeDockerSshFiles({ dir, privateKey: fs.readFileSync(path.join(programDir, SSH_KEY_FILE), "utf8"), connection });
    } else {
        const key = await opts.secretKey?.();
        if (!key) {
            throw new CliError(
                `host ${connection.user}@${connection.host} is reached over SSH, and no key was found: pass --identity FILE, ` +
                    `or set the stack's secret (pulumi config set --secret sshPrivateKey < KEYFILE)`,
            );
        }
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-cli-ssh."));
        temporary = true;
        writeDockerSshFiles({ dir, privateKey: key, connection });
    }
    const ssh = opts.sshCommand ?? "ssh";
    const args = [...dockerSshOpts(dir), "-o", "ConnectTimeout=15", "-p", String(connection.port), "-l", connection.user, "-T", "--", connection.host, RUN_STDIN_SCRIPT];
    return {
        runner: async (script, params) => {
            const r = await run(ssh, args, renderScriptStdin(script, params), env, timeoutMs);
            // ssh's own failures (host key, auth, connect) exit 255 before the script runs.
            if (r.code === 255) throw new CliError(`ssh to ${connection.user}@${connection.host}:${connection.port} failed: ${r.stderr.trim().split("\n").pop()}`);
            return r;
        },
        close: () => {
            if (temporary) fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}

/** The script's JSON line, or a CliError naming the step and the script's own stderr. */
export function scriptJson<T>(step: string, r: ScriptRun): T {
    if (r.code !== 0) throw new CliError(`${step} failed (exit ${r.code}): ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`);
    const line = r.stdout.trim().split("\n").pop() ?? "";
    try {
        return JSON.parse(line) as T;
    } catch {
        throw new CliError(`${step}: expected one JSON line on stdout, got: ${line.slice(0, 200)}`);
    }
}
