/**
 * The `create` command (RUN_STDIN_SCRIPT) run for real as non-root users: temporary local users,
 * a real sudoers rule built by sudoersLine(), and the real sudo. A user with the rule runs the
 * program as root; a user without one, or with a rule that wants a password, fails at once with
 * the message that names the user and the line to add; root runs the program without sudo.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderScriptStdin, RUN_STDIN_SCRIPT, sudoersLine } from "../../components/hostScript";
import { ensureParams } from "../../components/storageLayout";
import { fakeCommands, requirePrerequisites, runScriptStdin, sh } from "../support/host";

/** Every user this test creates starts with this; leftovers of a killed run are removed by it. */
const USER_PREFIX = "mmagent-t-";
const SUDO_USER = `${USER_PREFIX}sudo`;
const NOSUDO_USER = `${USER_PREFIX}nosudo`;
const PASSWD_USER = `${USER_PREFIX}passwd`;
const SUDOERS_DIR = "/etc/sudoers.d";
/** sudo skips files in sudoers.d whose names contain a dot, so `.tmp` is never read half-written. */
const SUDOERS_PREFIX = "mmagent-test-";
const SUDOERS_FILE = path.join(SUDOERS_DIR, `${SUDOERS_PREFIX}sudo-escalation`);
/** The rule a careful admin might write first: the right command, but with a password. */
const passwordRule = (user: string) => sudoersLine(user).replace(" NOPASSWD:", "");

/** Prints the uid, whether sudo was involved, and where the script's stdin points. */
const PROGRAM = 'id -u\necho "sudo_user=${SUDO_USER:-}"\nreadlink /proc/$$/fd/0\n';

const work = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-sudo-"));

function removeLeftovers(): void {
    for (const line of fs.readFileSync("/etc/passwd", "utf8").split("\n")) {
        const name = line.split(":")[0];
        if (name.startsWith(USER_PREFIX)) spawnSync("userdel", ["-f", name], { stdio: "ignore" });
    }
    for (const f of fs.readdirSync(SUDOERS_DIR)) {
        if (f.startsWith(SUDOERS_PREFIX)) fs.rmSync(path.join(SUDOERS_DIR, f), { force: true });
    }
}

beforeAll(() => {
    requirePrerequisites({ commands: ["sudo", "useradd", "runuser", "visudo"], root: true });
    removeLeftovers();
    for (const user of [SUDO_USER, NOSUDO_USER, PASSWD_USER]) sh("useradd", ["-M", "-s", "/usr/sbin/nologin", user]);
    // Validated before sudo can read it: a broken file in sudoers.d would lock sudo for everyone.
    const tmp = `${SUDOERS_FILE}.tmp`;
    fs.writeFileSync(tmp, `${sudoersLine(SUDO_USER)}\n${passwordRule(PASSWD_USER)}\n`, { mode: 0o440 });
    sh("visudo", ["-cf", tmp]);
    fs.renameSync(tmp, SUDOERS_FILE);
});

afterAll(() => {
    removeLeftovers();
    fs.rmSync(work, { recursive: true, force: true });
});

interface Run {
    status: number | null;
    stdout: string;
    stderr: string;
    ms: number;
}

/** Runs the create command as `user`, the way pulumi does for a local or SSH user: `sh -c` with the program on stdin. */
function runAs(user: string, program: string): Run {
    const start = Date.now();
    const r = spawnSync("runuser", ["-u", user, "--", "/bin/sh", "-c", RUN_STDIN_SCRIPT], {
        input: program,
        cwd: "/",
        encoding: "utf8",
        timeout: 20_000,
        killSignal: "SIGKILL",
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - start };
}

/** Script files from `mktemp` still on disk that belong to `user`. */
function leftoverFiles(user: string): string[] {
    const uid = Number(sh("id", ["-u", user]).trim());
    return fs
        .readdirSync("/tmp")
        .filter((f) => f.startsWith("mmagent-host."))
        .filter((f) => fs.statSync(path.join("/tmp", f)).uid === uid);
}

function expectRefused(r: Run, user: string): void {
    expect(r.status).not.toBe(0);
    expect(r.status).not.toBeNull(); // null: killed by the timeout, i.e. it hung
    expect(r.stdout).toBe("");
    // One line, sudo's own complaint swallowed.
    expect(r.stderr.split("\n")).toEqual([expect.any(String), ""]);
    expect(r.stderr).toContain(`mmagent: user '${user}' is not root`);
    expect(r.stderr).toContain(`visudo -f /etc/sudoers.d/mmagent\`: ${sudoersLine(user)}\n`);
    expect(leftoverFiles(user)).toEqual([]);
}

test("the sudoers rules are in force as written (sudo -l)", () => {
    expect(sh("sudo", ["-l", "-U", SUDO_USER])).toContain(`(root) NOPASSWD: /bin/bash /tmp/mmagent-host.??????????`);
    const passwd = sh("sudo", ["-l", "-U", PASSWD_USER]);
    expect(passwd).toContain("(root) /bin/bash /tmp/mmagent-host.??????????");
    expect(passwd).not.toContain("NOPASSWD");
    expect(spawnSync("sudo", ["-l", "-U", NOSUDO_USER], { encoding: "utf8" }).stdout).toMatch(/not allowed to run sudo/);
});

test("a user with sudoersLine(user) runs the program as root, via sudo, with stdin closed", () => {
    const r = runAs(SUDO_USER, PROGRAM);
    expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 0, stdout: `0\nsudo_user=${SUDO_USER}\n/dev/null\n` });
    expect(r.stderr).not.toMatch(/mmagent:/);
    expect(leftoverFiles(SUDO_USER)).toEqual([]);
});

test("a user with sudoersLine(user) runs a real host script as root (sudo resets the environment; the parameters travel on stdin)", () => {
    const root = path.join(work, "private");
    fs.mkdirSync(root, { mode: 0o700 });
    const r = runAs(SUDO_USER, renderScriptStdin("storage", ensureParams({ backend: "dir", root }, { name: "agent-db", profile: "db" })));
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
    expect(JSON.parse(r.stdout.trim().split("\n").pop()!)).toEqual({ volume: "agent-db", path: path.join(root, "agent-db"), backend: "dir" });
    expect(fs.statSync(path.join(root, "agent-db")).uid).toBe(0);
});

test("a user without sudo rights: fails at once, naming the user and the exact sudoers line", () => {
    expectRefused(runAs(NOSUDO_USER, PROGRAM), NOSUDO_USER);
});

test("a user whose rule wants a password: fails fast with the same message, never prompts", () => {
    const r = runAs(PASSWD_USER, PROGRAM);
    expectRefused(r, PASSWD_USER);
    expect(r.ms).toBeLessThan(10_000);
});

test("root runs the program directly: uid 0, sudo never called", () => {
    const bin = path.join(work, "bin");
    const log = path.join(work, "sudo.log");
    fakeCommands(bin, log, { sudo: "exit 97" });
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    delete env.SUDO_USER;
    const r = runScriptStdin(PROGRAM, { env });
    expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 0, stdout: "0\nsudo_user=\n/dev/null\n" });
    expect(fs.existsSync(log)).toBe(false);
});
