/**
 * Docker over SSH without the operator's `~/.ssh`: the private key and the pinned host key reach
 * the system `ssh` client that the Docker provider runs, through two private files and fixed
 * `sshOpts`.
 *
 * Why: for an `ssh://` host the provider (kreuzwerker/terraform-provider-docker v4.5.0,
 * internal/provider/config.go MakeClient → docker/cli cli/connhelper) runs
 * `ssh [-l user] [-p port] <sshOpts…> "-o ConnectTimeout=30" -T -- host "docker system dial-stdio"`
 * with the pulumi process's environment. It has no key input, so without help it uses whatever
 * `~/.ssh`, known_hosts and agent the machine has: in CI that is nothing, and the stack's pinned
 * `hostKey` never reaches it.
 *
 * What this does instead: before the provider is configured, the program writes the stack's
 * `sshPrivateKey` (0600) and a known_hosts line built from `hostKey` into a 0700 directory in the
 * home of the user running pulumi, and points `ssh` at exactly those files with options that
 * also turn off every other source of keys and trust (agent, default identities, global
 * known_hosts, config files). The options name the directory as `~/…`, which `ssh` expands to the
 * same home (getpwuid, as `os.userInfo()` reads it), so the provider's inputs are the same string
 * on every machine and every run: no diff in a preview.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { HostConnection } from "./types";

type SshConnection = Extract<HostConnection, { kind: "ssh" }>;

/** The private key's file name inside the client directory. */
export const SSH_KEY_FILE = "id_key";
/** The known_hosts file's name inside the client directory. */
export const SSH_KNOWN_HOSTS_FILE = "known_hosts";

/**
 * The default client directory of one NvidiaHost: `~/.mmagent/ssh/<project>.<stack>.<name>`.
 * Characters outside `[A-Za-z0-9._-]` become `_` (`%` would be an ssh token, a space would split
 * an option).
 */
export function defaultDockerSshDir(project: string, stack: string, name: string): string {
    return `~/.mmagent/ssh/${[project, stack, name].map((s) => s.replace(/[^A-Za-z0-9._-]/g, "_")).join(".")}`;
}

/**
 * `sshOpts` for the Docker provider: each option one argv element after `-o`, in this order.
 * @param dir the client directory, `~/…` or absolute (see {@link defaultDockerSshDir}).
 */
export function dockerSshOpts(dir: string): string[] {
    if (/[\s%"'\\]/.test(dir)) throw new Error(`ssh client directory ${JSON.stringify(dir)}: no whitespace, quotes, backslashes or % (ssh would split or expand them)`);
    const options = [
        // No ~/.ssh/config or /etc/ssh/ssh_config: the same connection on every machine, as remote.Command makes it.
        ["-F", "/dev/null"],
        ["-o", `IdentityFile=${dir}/${SSH_KEY_FILE}`],
        // Only that key: never the default identities or an agent's.
        ["-o", "IdentitiesOnly=yes"],
        ["-o", "IdentityAgent=none"],
        // Trust exactly the pinned host key: our known_hosts, no global one, never add or update keys.
        ["-o", `UserKnownHostsFile=${dir}/${SSH_KNOWN_HOSTS_FILE}`],
        ["-o", "GlobalKnownHostsFile=/dev/null"],
        ["-o", "StrictHostKeyChecking=yes"],
        ["-o", "UpdateHostKeys=no"],
        ["-o", "CheckHostIP=no"],
        // Never prompt (a passphrase, a password, an unknown key): fail instead.
        ["-o", "BatchMode=yes"],
    ];
    return options.flat();
}

/**
 * The known_hosts line for the pinned key, in the form `ssh` looks up: `host` on port 22,
 * `[host]:port` otherwise (OpenSSH `put_host_port`).
 */
export function knownHostsLine(connection: Pick<SshConnection, "host" | "port" | "hostKey">): string {
    const [type, key] = connection.hostKey.trim().split(/\s+/);
    const host = connection.host.toLowerCase();
    return `${connection.port === 22 ? host : `[${host}]:${connection.port}`} ${type} ${key}\n`;
}

/** `~/x` → `<home>/x`, with the home from the passwd entry, as `ssh` expands it (not `$HOME`). */
export function expandHome(dir: string, home = os.userInfo().homedir): string {
    if (dir === "~") return home;
    if (dir.startsWith("~/")) return path.join(home, dir.slice(2));
    if (!path.isAbsolute(dir)) throw new Error(`ssh client directory ${JSON.stringify(dir)} must start with ~/ or /`);
    return dir;
}

/**
 * Makes `dir` (and the missing directories above it, below the home) a private directory of this
 * user: created 0700; refused when it is a symlink or owned by another user (someone else could
 * then read or swap the key).
 */
function ensurePrivateDir(dir: string, stopAt: string): void {
    if (dir === stopAt) return;
    const parent = path.dirname(dir);
    if (parent !== dir && !fs.existsSync(parent)) ensurePrivateDir(parent, stopAt);
    try {
        fs.mkdirSync(dir, { mode: 0o700 });
    } catch (e: any) {
        if (e.code !== "EEXIST") throw e;
    }
    const st = fs.lstatSync(dir);
    const uid = process.getuid?.() ?? st.uid;
    if (!st.isDirectory() || st.isSymbolicLink()) throw new Error(`${dir} is not a directory: remove it so the ssh client files can be written there`);
    if (st.uid !== uid) throw new Error(`${dir} belongs to uid ${st.uid}, not to the user running pulumi (uid ${uid}): remove it`);
    if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

/** Writes `content` to `file` with `mode` atomically (a temporary file, then rename); unchanged files are left alone. */
function writePrivateFile(file: string, content: string, mode: number): void {
    try {
        const st = fs.lstatSync(file);
        if (st.isFile() && (st.mode & 0o777) === mode && fs.readFileSync(file, "utf8") === content) return;
    } catch {
        // Missing: write it.
    }
    const tmp = `${file}.${process.pid}.tmp`;
    fs.rmSync(tmp, { force: true });
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
    try {
        fs.writeSync(fd, content);
        fs.fchmodSync(fd, mode);
    } finally {
        fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
}

/** Inputs of {@link writeDockerSshFiles}: where the SSH client files go and what they hold. */
export interface DockerSshFiles {
    /** The client directory as `sshOpts` names it (`~/…` or absolute). */
    dir: string;
    /** OpenSSH or PEM private key text (the `sshPrivateKey` secret). */
    privateKey: string;
    /** The host, port and pinned host key the `known_hosts` line is written for. */
    connection: Pick<SshConnection, "host" | "port" | "hostKey">;
    /** The home `~` stands for. @default the passwd entry's home of this process's user */
    home?: string;
}

/**
 * Writes the key (0600, with the trailing newline OpenSSH needs) and the known_hosts line
 * (0600) into the client directory (0700). Idempotent; returns the absolute directory.
 */
export function writeDockerSshFiles(files: DockerSshFiles): string {
    const home = files.home ?? os.userInfo().homedir;
    const dir = expandHome(files.dir, home);
    ensurePrivateDir(dir, home);
    const key = files.privateKey.replace(/\r\n/g, "\n").replace(/\n*$/, "\n");
    writePrivateFile(path.join(dir, SSH_KEY_FILE), key, 0o600);
    writePrivateFile(path.join(dir, SSH_KNOWN_HOSTS_FILE), knownHostsLine(files.connection), 0o600);
    return dir;
}

/**
 * The environment variables that make the Docker provider talk to another daemon than `host`
 * says, or the wrong way (provider.go: `context` defaults to $DOCKER_CONTEXT and overrides
 * `host`; `cert_path` and the `*_material` keys default to these variables and switch
 * MakeClient to TLS before it looks at `ssh://`).
 */
export const DOCKER_PROVIDER_OVERRIDES: Record<string, string> = {
    DOCKER_CONTEXT: "it replaces host.connection with that context's endpoint",
    DOCKER_CERT_PATH: "it makes the provider connect with TLS instead of the socket or SSH",
    DOCKER_CA_MATERIAL: "it makes the provider connect with TLS instead of the socket or SSH",
    DOCKER_CERT_MATERIAL: "it makes the provider connect with TLS instead of the socket or SSH",
    DOCKER_KEY_MATERIAL: "it makes the provider connect with TLS instead of the socket or SSH",
};

/** Why `name` must not be set, with the fix; undefined when it is unset or empty. */
export function dockerEnvironmentProblem(env: NodeJS.ProcessEnv, name: string): string | undefined {
    const value = env[name] ?? "";
    if (value === "") return undefined;
    return `is set (${JSON.stringify(value.slice(0, 80))}) in the environment of pulumi: ${DOCKER_PROVIDER_OVERRIDES[name]}, whatever host.connection says. Unset it for pulumi, e.g. \`env -u ${name} pulumi up\``;
}
