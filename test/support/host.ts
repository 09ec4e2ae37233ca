/**
 * Helpers for the real-engine tests: prerequisites, running the project's host scripts exactly
 * as a deployment does (same stdin, same `create` command), and a Btrfs loop filesystem.
 */
import { execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { HostScriptName, renderScriptStdin, RUN_STDIN_SCRIPT } from "../../components/hostScript";

export const TEST_IMAGE = process.env.MMAGENT_TEST_IMAGE ?? "local/mmagent-testbase:2";
/** The test image plus Debian's haproxy: the proxy image of the `haproxy` engine in the real tests (scripts/test-host.sh). */
export const HAPROXY_TEST_IMAGE = process.env.MMAGENT_HAPROXY_TEST_IMAGE ?? "local/mmagent-haproxy:3";

/** Fails with one message naming everything missing and the script that provides it. */
export function requirePrerequisites(opts: { commands?: string[]; docker?: boolean; image?: boolean; root?: boolean }): void {
    const missing: string[] = [];
    for (const cmd of opts.commands ?? []) {
        if (spawnSync("sh", ["-c", `command -v ${cmd}`]).status !== 0) missing.push(`command ${cmd}`);
    }
    if (opts.root && process.getuid && process.getuid() !== 0) missing.push("root (loop devices, mounts)");
    if (opts.docker && spawnSync("docker", ["info"], { stdio: "ignore" }).status !== 0) missing.push("a running Docker engine");
    else if (opts.image && spawnSync("docker", ["image", "inspect", TEST_IMAGE], { stdio: "ignore" }).status !== 0) missing.push(`the test image ${TEST_IMAGE}`);
    if (missing.length > 0) {
        throw new Error(`real-engine test prerequisites missing: ${missing.join(", ")}. Run \`sudo scripts/test-host.sh up\` (installs docker.io, btrfs-progs, debootstrap, wrk; starts dockerd; builds ${TEST_IMAGE}).`);
    }
}

export interface ScriptResult {
    status: number;
    stdout: string;
    stderr: string;
    json: any;
}

/** Runs a host script with parameters the way hostScriptCommand does: `sh -c <create>` with the rendered stdin. */
export function runHostScript(script: HostScriptName, params: Record<string, string>, env: NodeJS.ProcessEnv = process.env, timeoutMs = 120_000): ScriptResult {
    return runScriptStdin(renderScriptStdin(script, params), { env, timeoutMs });
}

/** Runs an already rendered program the way hostScriptCommand's `create` does. */
export function runScriptStdin(stdin: string, opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): ScriptResult {
    const r = spawnSync("/bin/sh", ["-c", RUN_STDIN_SCRIPT], { input: stdin, env: opts.env ?? process.env, cwd: opts.cwd, encoding: "utf8", timeout: opts.timeoutMs ?? 120_000 });
    return scriptResult(r.status ?? -1, r.stdout, r.stderr);
}

/**
 * {@link runHostScript} without blocking the event loop, for tests that drive load from this
 * process while the script runs (a blocked loop would stall the load and look like a gap).
 */
export function runHostScriptAsync(script: HostScriptName, params: Record<string, string>, timeoutMs = 120_000): Promise<ScriptResult> {
    return new Promise((resolve) => {
        const child = spawn("/bin/sh", ["-c", RUN_STDIN_SCRIPT], { stdio: ["pipe", "pipe", "pipe"], timeout: timeoutMs });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("close", (code) => resolve(scriptResult(code ?? -1, stdout, stderr)));
        child.stdin.end(renderScriptStdin(script, params));
    });
}

function scriptResult(status: number, stdout: string, stderr: string): ScriptResult {
    let json: any;
    try {
        json = JSON.parse(stdout.trim().split("\n").pop() ?? "");
    } catch {
        json = undefined;
    }
    return { status, stdout, stderr, json };
}

export function sh(cmd: string, args: string[], opts: { input?: string; cwd?: string } = {}): string {
    return execFileSync(cmd, args, { encoding: "utf8", input: opts.input, cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"] });
}

/** A Btrfs filesystem on a loop device, mounted at `mountPoint`. */
export class BtrfsLoop {
    readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-btrfs-"));
    readonly image = path.join(this.dir, "pool.img");
    readonly mountPoint = path.join(this.dir, "mnt");

    constructor(readonly sizeMiB = 2048) {}

    create(): this {
        sh("truncate", ["-s", `${this.sizeMiB}M`, this.image]);
        sh("mkfs.btrfs", ["-q", this.image]);
        fs.mkdirSync(this.mountPoint);
        sh("mount", ["-o", "loop", this.image, this.mountPoint]);
        return this;
    }

    destroy(): void {
        spawnSync("umount", [this.mountPoint]);
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

export function sha256File(file: string): string {
    return sh("sha256sum", [file]).split(" ")[0];
}

/** A directory of fake commands that log their argv, one line per call, to `log`. */
export function fakeCommands(dir: string, log: string, scripts: Record<string, string>): void {
    fs.mkdirSync(dir, { recursive: true });
    for (const [name, body] of Object.entries(scripts)) {
        const file = path.join(dir, name);
        // One write per call (O_APPEND), so concurrent fakes (curl | gpg) never interleave a line.
        fs.writeFileSync(file, `#!/usr/bin/env bash\nline=${JSON.stringify(name)}$(printf ' %q' "$@")\necho "$line" >>${JSON.stringify(log)}\n${body}\n`);
        fs.chmodSync(file, 0o755);
    }
}

/**
 * Removes a client directory the program wrote under ~/.mmagent/ssh (components/dockerSsh.ts),
 * and ~/.mmagent/ssh and ~/.mmagent when that leaves them empty: a test leaves no trace in the home.
 */
export function removeSshClientDir(dir: string): void {
    fs.rmSync(dir, { recursive: true, force: true });
    for (const parent of [path.dirname(dir), path.dirname(path.dirname(dir))]) {
        try {
            if (path.basename(parent) === "ssh" || path.basename(parent) === ".mmagent") fs.rmdirSync(parent);
        } catch {
            // Not empty (another stack's files): keep it.
        }
    }
}
