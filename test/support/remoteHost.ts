/**
 * The remote test host of `scripts/remote-test-host.sh` (a network namespace with its own sshd on
 * this machine), and a way to run a command on it over real SSH the way pulumi-command's
 * `remote.Command` does.
 *
 * {@link runOverSsh} mirrors pulumi/pulumi-command@v1.2.1 (golang.org/x/crypto/ssh) with the
 * `ssh2` package, so that a test sees what a deployment would see:
 * - provider/pkg/provider/remote/connection.go, `SSHConfig()`: the `hostKey` line is parsed with
 *   `ssh.ParseAuthorizedKey`, verified with `ssh.FixedHostKey(publicKey)`, and only its type is
 *   offered (`HostKeyAlgorithms: []string{publicKey.Type()}`); the private key is the only auth
 *   method (`ssh.PublicKeys(signer)`), no agent, no password, no keyboard-interactive.
 * - provider/pkg/provider/remote/commandOutputs.go, `run()`: one session, `session.Stdin =
 *   strings.NewReader(stdin)` (written, then EOF), `session.Run(cmd)` (exec of the raw command
 *   string, no pty, run by the user's login shell), and `strings.TrimSuffix(stdout, "\n")` /
 *   `strings.TrimSuffix(stderr, "\n")`.
 * Two differences, both on purpose: without a host key the provider ignores the host key
 * (`ssh.InsecureIgnoreHostKey()`), while this helper refuses (our program always pins one); and a
 * non-zero exit is returned as `code` instead of failing, so tests can look at it. There is one
 * dial, not the provider's `dialErrorLimit` retries.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { Client, ClientChannel, ConnectConfig, ServerHostKeyAlgorithm } from "ssh2";

export interface RemoteHostEnv {
    host: string;
    port: number;
    /** The deploy user: in the docker group, with sudoersLine(user) in /etc/sudoers.d. */
    user: string;
    /** Same key, in the docker group, no sudoers entry. */
    noSudoUser: string;
    /** The client private key (OpenSSH format, 0600) authorized for both users. */
    privateKeyPath: string;
    /** The sshd's public host key, `type base64` (no comment): the value for `connection.hostKey`. */
    hostKey: string;
    /** Another ed25519 public key line that the server does not have. */
    wrongHostKey: string;
    /** A client private key that no user authorizes. */
    wrongPrivateKeyPath: string;
    /** /etc/sudoers.d file holding sudoersLine(user). */
    sudoersFile: string;
    stateDir: string;
}

export const REMOTE_HOST_SCRIPT = path.join(__dirname, "..", "..", "scripts", "remote-test-host.sh");

export function remoteHostStateDir(): string {
    return path.join(process.env.MMAGENT_TEST_STATE ?? "/tmp/mmagent-test-host", "remote-host");
}

/** Reads the env.json that `scripts/remote-test-host.sh up` wrote. */
export function remoteHostEnv(): RemoteHostEnv {
    const file = path.join(remoteHostStateDir(), "env.json");
    let text: string;
    try {
        text = fs.readFileSync(file, "utf8");
    } catch {
        throw new Error(`the remote test host is not up (no ${file}). Run \`sudo bash scripts/remote-test-host.sh up\` first (and \`down\` afterwards).`);
    }
    return JSON.parse(text) as RemoteHostEnv;
}

export interface SshRunOptions {
    /** Login user; defaults to env.user (the deploy user). */
    user?: string;
    /** Private key, PEM/OpenSSH text (like `connection.privateKey`); defaults to the key at env.privateKeyPath. */
    privateKey?: string;
    /**
     * The pinned host key, `type base64 [comment]` (like `connection.hostKey`). Required: there
     * is no default and no "accept anything", so a test always states which key it trusts.
     */
    hostKey?: string;
    /** Run as is by the remote user's login shell (`sh -c`-like), no pty. */
    command: string;
    /** Written to the command's stdin, then EOF (also when empty, as Go's session does). */
    stdin?: string;
    /** Whole run: connect, handshake, command. Default 60 s. */
    timeoutMs?: number;
}

export interface SshRunResult {
    /** Exit status; -1 when the command died by a signal or sent none. */
    code: number;
    signal?: string;
    /** With one trailing "\n" removed, as the provider's outputs. */
    stdout: string;
    stderr: string;
}

export type SshErrorKind = "host-key" | "authentication" | "connection" | "timeout" | "config";

/** A failure before or around the command (never a non-zero exit, which is a result). */
export class SshError extends Error {
    constructor(
        readonly kind: SshErrorKind,
        message: string,
        /** True when the server could have started the command (only after authentication). */
        readonly commandMayHaveRun = false,
    ) {
        super(message);
        this.name = "SshError";
    }
}

interface PublicKey {
    type: string;
    blob: Buffer;
}

/** `ssh.ParseAuthorizedKey` for the part we need: the type and the wire-format blob, which must agree. */
function parseHostKeyLine(line: string): PublicKey {
    const [type, b64] = line.trim().split(/\s+/);
    const blob = b64 ? Buffer.from(b64, "base64") : Buffer.alloc(0);
    const inner = blob.length >= 4 ? blob.subarray(4, 4 + blob.readUInt32BE(0)).toString("latin1") : "";
    if (!type || !b64 || inner !== type) {
        throw new SshError("config", `failed to parse host key ${JSON.stringify(line.slice(0, 60))}: expected "<type> <base64 key>" as in ssh_host_*_key.pub`);
    }
    return { type, blob };
}

/** The key type named inside a wire-format public key blob. */
function blobType(blob: Buffer): string {
    return blob.length >= 4 ? blob.subarray(4, 4 + blob.readUInt32BE(0)).toString("latin1") : "?";
}

/** OpenSSH's fingerprint: SHA256:<base64 of the blob's SHA-256, no padding>. */
function fingerprint(blob: Buffer): string {
    return `SHA256:${crypto.createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** Where to connect: the test host's env.json, or a `remote.Command`'s connection. */
export interface SshTarget {
    host: string;
    port: number;
    /** Default login user. */
    user?: string;
    /** Default private key file. */
    privateKeyPath?: string;
}

/** Runs `command` over SSH as `user`, with the pinned host key; resolves with its exit code and output. */
export function runOverSsh(env: SshTarget, opts: SshRunOptions): Promise<SshRunResult> {
    const user = opts.user ?? env.user ?? "root";
    const where = `${user}@${env.host}:${env.port}`;
    const timeoutMs = opts.timeoutMs ?? 60_000;
    if (!opts.hostKey) {
        // The provider would fall back to ssh.InsecureIgnoreHostKey() here; we never do.
        return Promise.reject(new SshError("host-key", `refusing to connect to ${where} without a pinned host key (pass hostKey, e.g. env.hostKey)`));
    }
    let pinned: PublicKey;
    try {
        pinned = parseHostKeyLine(opts.hostKey);
    } catch (e) {
        return Promise.reject(e);
    }
    const privateKey = opts.privateKey ?? (env.privateKeyPath ? fs.readFileSync(env.privateKeyPath, "utf8") : undefined);
    if (!privateKey) return Promise.reject(new SshError("config", `no private key for ${where}: pass privateKey (remote.Command's connection.privateKey)`));

    return new Promise<SshRunResult>((resolve, reject) => {
        const conn = new Client();
        let offered: Buffer | undefined;
        let authenticated = false;
        let settled = false;
        const finish = (err: Error | undefined, result?: SshRunResult): void => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            conn.end();
            if (err) reject(err);
            else resolve(result!);
        };
        const timer = setTimeout(
            () => finish(new SshError("timeout", `SSH to ${where} timed out after ${timeoutMs} ms (${authenticated ? "while the command ran" : "before authentication"})`, authenticated)),
            timeoutMs,
        );

        const describe = (err: Error & { level?: string }): SshError => {
            if (/Host denied|host key/i.test(err.message)) {
                const got = offered ? `offered ${blobType(offered)} ${fingerprint(offered)}` : `offered no ${pinned.type} host key`;
                return new SshError(
                    "host-key",
                    `SSH host key verification failed for ${env.host}:${env.port}: expected ${pinned.type} ${fingerprint(pinned.blob)} (pinned hostKey), ${got}. Refused before authentication; nothing ran. (${err.message})`,
                );
            }
            if (err.level === "client-authentication") {
                return new SshError("authentication", `SSH authentication failed for ${where}: the server accepted none of the offered methods (publickey with the given private key). (${err.message})`);
            }
            if (err.level === "client-timeout") return new SshError("timeout", `SSH to ${where}: ${err.message}`);
            return new SshError("connection", `SSH to ${where} failed${authenticated ? " after authentication" : ""}: ${err.message}`, authenticated);
        };

        conn.on("error", (err) => finish(describe(err)));
        conn.on("close", () => finish(new SshError("connection", `SSH connection to ${where} closed before the command finished`, authenticated)));
        conn.on("ready", () => {
            authenticated = true;
            // commandOutputs.go: client.NewSession(); session.Run(cmd): an "exec" request with the
            // raw string, no pty, no environment (the provider sets none with addPreviousOutputInEnv: false).
            conn.exec(opts.command, (err: Error | undefined, stream: ClientChannel) => {
                if (err) return finish(new SshError("connection", `SSH to ${where}: exec refused: ${err.message}`, true));
                const out: Buffer[] = [];
                const errOut: Buffer[] = [];
                let code: number | null = null;
                let signal: string | undefined;
                stream.on("data", (d: Buffer) => out.push(d));
                stream.stderr.on("data", (d: Buffer) => errOut.push(d));
                stream.on("exit", (...args: unknown[]) => {
                    // (code) for an exit-status, (null, signal, ...) for an exit-signal.
                    code = typeof args[0] === "number" ? args[0] : null;
                    signal = typeof args[1] === "string" ? args[1] : undefined;
                });
                stream.on("close", () =>
                    finish(undefined, {
                        code: code ?? -1,
                        ...(signal ? { signal } : {}),
                        // strings.TrimSuffix(stdoutbuf.String(), "\n"): exactly one newline.
                        stdout: Buffer.concat(out).toString("utf8").replace(/\n$/, ""),
                        stderr: Buffer.concat(errOut).toString("utf8").replace(/\n$/, ""),
                    }),
                );
                // session.Stdin = strings.NewReader(stdin): x/crypto copies it, then CloseWrite (EOF);
                // with no stdin it sends EOF at once (an empty reader).
                stream.end(opts.stdin ?? "");
            });
        });

        const config: ConnectConfig = {
            host: env.host,
            port: env.port,
            username: user,
            // connection.go: config.Auth = ssh.PublicKeys(signer) from ssh.ParsePrivateKey(privateKey).
            privateKey,
            tryKeyboard: false,
            agent: undefined,
            readyTimeout: timeoutMs,
            // connection.go: HostKeyAlgorithms: []string{publicKey.Type()}: only the pinned key's type is negotiated.
            algorithms: { serverHostKey: [pinned.type as ServerHostKeyAlgorithm] },
            // connection.go: ssh.FixedHostKey(publicKey): the offered key must equal the pinned one,
            // type and blob (x/crypto compares the marshalled keys byte for byte).
            hostVerifier: (key: Buffer): boolean => {
                offered = key;
                return blobType(key) === pinned.type && key.equals(pinned.blob);
            },
        };
        try {
            conn.connect(config);
        } catch (e) {
            // ssh2 parses the private key synchronously, like ssh.ParsePrivateKey before any dial.
            finish(new SshError("config", `SSH to ${where}: failed to parse private key: ${(e as Error).message}`));
        }
    });
}
