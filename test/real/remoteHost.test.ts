/**
 * The remote test host (scripts/remote-test-host.sh): a network namespace with its own sshd, a
 * non-root deploy user with the project's sudoers rule, and this machine's Docker engine. Every
 * command goes over real SSH through runOverSsh, which connects the way pulumi-command's
 * remote.Command does (pinned host key, exec of the raw command, program on stdin then EOF).
 */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as crypto from "crypto";
import { paramLine, RUN_STDIN_SCRIPT, sudoersLine } from "../../components/hostScript";
import { requirePrerequisites } from "../support/host";
import { REMOTE_HOST_SCRIPT, remoteHostEnv, RemoteHostEnv, remoteHostStateDir, runOverSsh, SshError } from "../support/remoteHost";

const PREFIX = "mmagent-rh";

function script(action: "up" | "down"): number {
    const start = Date.now();
    execFileSync("bash", [REMOTE_HOST_SCRIPT, action], { stdio: ["ignore", "inherit", "inherit"], timeout: 180_000 });
    const ms = Date.now() - start;
    console.log(`scripts/remote-test-host.sh ${action}: ${ms} ms`);
    return ms;
}

/** What is left on this machine with the prefix: netns, links, users, sudoers files, sshd processes. */
function leftovers(): string[] {
    const found: string[] = [];
    const netns = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
    for (const line of netns.split("\n")) if (line.startsWith(PREFIX)) found.push(`netns ${line.split(" ")[0]}`);
    const links = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout;
    for (const line of links.split("\n")) {
        const name = (line.split(": ")[1] ?? "").split("@")[0];
        if (name.startsWith(PREFIX)) found.push(`link ${name}`);
    }
    for (const line of fs.readFileSync("/etc/passwd", "utf8").split("\n")) {
        if (line.startsWith(PREFIX)) found.push(`user ${line.split(":")[0]}`);
    }
    for (const f of fs.readdirSync("/etc/sudoers.d")) if (f.startsWith(PREFIX)) found.push(`sudoers ${f}`);
    const config = `${remoteHostStateDir()}/sshd_config`;
    for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
        let cmdline = "";
        try {
            cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
        } catch {
            continue;
        }
        if (cmdline.includes("sshd") && cmdline.includes(config)) found.push(`sshd pid ${pid}`);
    }
    if (fs.existsSync(remoteHostStateDir())) found.push(`state dir ${remoteHostStateDir()}`);
    return found;
}

/** Host-script files (`mktemp /tmp/mmagent-host.XXXXXXXXXX`) still on disk that belong to `user`. */
function leftoverScriptFiles(user: string): string[] {
    const uid = Number(execFileSync("id", ["-u", user], { encoding: "utf8" }).trim());
    return fs
        .readdirSync("/tmp")
        .filter((f) => f.startsWith("mmagent-host."))
        .filter((f) => {
            try {
                return fs.statSync(`/tmp/${f}`).uid === uid;
            } catch {
                return false;
            }
        });
}

let env: RemoteHostEnv;

beforeAll(() => {
    requirePrerequisites({ commands: ["ip", "useradd", "visudo", "docker"], docker: true, root: true });
    script("up");
    env = remoteHostEnv();
}, 240_000);

afterAll(() => {
    script("down");
    expect(leftovers()).toEqual([]);
}, 120_000);

describe("remote test host over real SSH", () => {
    test("(a) runs a command as the deploy user with the pinned host key", async () => {
        const start = Date.now();
        const r = await runOverSsh(env, { hostKey: env.hostKey, command: "id -un" });
        console.log(`ssh id -un: ${Date.now() - start} ms`);
        expect(r).toEqual({ code: 0, stdout: env.user, stderr: "" });
        // One trailing newline is trimmed, no more (strings.TrimSuffix).
        const two = await runOverSsh(env, { hostKey: env.hostKey, command: "printf 'x\\n\\n'" });
        expect(two.stdout).toBe("x\n");
    });

    test("(b) a wrong host key is refused before anything runs", async () => {
        const marker = `/tmp/${PREFIX}-marker-${crypto.randomBytes(6).toString("hex")}`;
        try {
            const err = await runOverSsh(env, { hostKey: env.wrongHostKey, command: `touch ${marker}` }).then(
                () => undefined,
                (e: unknown) => e,
            );
            expect(err).toBeInstanceOf(SshError);
            expect((err as SshError).kind).toBe("host-key");
            expect((err as SshError).message).toMatch(/host key/);
            expect((err as SshError).message).toMatch(/expected ssh-ed25519 SHA256:\S+ \(pinned hostKey\), offered ssh-ed25519 SHA256:/);
            // No pin at all is refused too, without connecting.
            await expect(runOverSsh(env, { command: `touch ${marker}` })).rejects.toThrow(/without a pinned host key/);
            // The same command with the right key does run: the marker's absence above means something.
            expect(fs.existsSync(marker)).toBe(false);
            await runOverSsh(env, { hostKey: env.hostKey, command: `touch ${marker}` });
            expect(fs.existsSync(marker)).toBe(true);
        } finally {
            fs.rmSync(marker, { force: true });
        }
    });

    test("(c) a private key that no user authorizes fails authentication", async () => {
        const err = await runOverSsh(env, {
            hostKey: env.hostKey,
            privateKey: fs.readFileSync(env.wrongPrivateKeyPath, "utf8"),
            command: "true",
        }).then(
            () => undefined,
            (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(SshError);
        expect((err as SshError).kind).toBe("authentication");
        expect((err as SshError).message).toMatch(/authentication/);
        expect((err as SshError).message).toContain(`${env.user}@${env.host}:${env.port}`);
    });

    test("(d) RUN_STDIN_SCRIPT as the deploy user runs the program as root through sudo", async () => {
        const program = [
            "#!/usr/bin/env bash",
            paramLine("MMAGENT_PROBE", Buffer.from("it's \"quoted\" $(not run)")),
            "id -u",
            'echo "sudo_user=${SUDO_USER:-}"',
            'printf "%s\\n" "$MMAGENT_PROBE"',
            "",
        ].join("\n");
        const start = Date.now();
        const r = await runOverSsh(env, { hostKey: env.hostKey, command: RUN_STDIN_SCRIPT, stdin: program });
        console.log(`ssh RUN_STDIN_SCRIPT via sudo: ${Date.now() - start} ms`);
        expect(r).toEqual({ code: 0, stdout: `0\nsudo_user=${env.user}\nit's "quoted" $(not run)`, stderr: "" });
        expect(leftoverScriptFiles(env.user)).toEqual([]);
    });

    test("(e) RUN_STDIN_SCRIPT as a user without the sudoers rule fails with the line to add", async () => {
        const r = await runOverSsh(env, { user: env.noSudoUser, hostKey: env.hostKey, command: RUN_STDIN_SCRIPT, stdin: "#!/usr/bin/env bash\nid -u\n" });
        expect(r.code).not.toBe(0);
        expect(r.stdout).toBe("");
        expect(r.stderr).toContain(sudoersLine(env.noSudoUser));
        expect(r.stderr).toContain(`user '${env.noSudoUser}' is not root`);
        expect(leftoverScriptFiles(env.noSudoUser)).toEqual([]);
    });

    test("(f) docker over SSH as the deploy user reaches this machine's engine", async () => {
        // Other real tests may restart dockerd on this machine; give it a moment to answer again.
        for (let i = 0; i < 30 && spawnSync("docker", ["info"], { stdio: "ignore" }).status !== 0; i++) await new Promise((r) => setTimeout(r, 1000));
        const local = execFileSync("docker", ["version", "--format", "{{.Server.Version}}"], { encoding: "utf8" }).trim();
        const r = await runOverSsh(env, { hostKey: env.hostKey, command: "docker version --format '{{.Server.Version}}'" });
        expect(r).toEqual({ code: 0, stdout: local, stderr: "" });
        // What the Docker provider's ssh:// host runs on the remote side.
        const dial = await runOverSsh(env, { hostKey: env.hostKey, command: "docker system dial-stdio", stdin: "GET /_ping HTTP/1.0\r\n\r\n" });
        expect(dial.stdout).toMatch(/^HTTP\/1\.[01] 200 OK/);
    }, 60_000);

    test("(g) the sudoers file holds exactly sudoersLine(deploy user)", () => {
        expect(fs.readFileSync(env.sudoersFile, "utf8")).toBe(`${sudoersLine(env.user)}\n`);
        expect(fs.statSync(env.sudoersFile).mode & 0o777).toBe(0o440);
        expect(fs.readdirSync("/etc/sudoers.d").filter((f) => f.startsWith(PREFIX))).toEqual([`${PREFIX}-deploy`]);
    });
});
