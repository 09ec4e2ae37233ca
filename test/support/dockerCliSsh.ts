/**
 * Docker over SSH the way the Docker provider reaches it: the system `ssh` client started with
 * docker/cli's exact argv, speaking the Docker API through `docker system dial-stdio` on the
 * host. Used by the docker provider fake (providers/dockerProvider.ts) for `ssh://` hosts.
 *
 * Mirrors docker/cli@v28.5.2:
 * - cli/connhelper/connhelper.go `getConnectionHelper`: flags = sshOpts, then `"-o ConnectTimeout=30"`
 *   as ONE argv element unless some flag mentions ConnectTimeout, then `-T` unless present; the
 *   remote command `docker system dial-stdio` (or `docker --host=unix://<path> …` with a URL path).
 * - cli/connhelper/ssh/ssh.go `(*Spec).Command`/`args`: `[-l user] [-p port] <flags…> -- host <remote command>`,
 *   user/port/host POSIX-quoted, the remote command one string; a password, query or fragment in
 *   the URL is refused.
 * - cli/connhelper/commandconn/commandconn.go `New`: one `ssh` process per connection with the
 *   process's environment, in its own session (setsid); when it exits non-zero, reads fail with
 *   "command [ssh …] has exited with exit status N, make sure the URL is valid, and Docker 18.09 or
 *   later is installed on the remote host: stderr=…".
 * The Go http.Transport keeps connections alive and reuses them; so does the agent here.
 */
import { ChildProcess, spawn } from "child_process";
import Docker from "dockerode";
import * as http from "http";
import { Duplex } from "stream";

/** mvdan.cc/sh syntax.Quote(s, LangPOSIX) for the strings it leaves as they are; anything else is refused here. */
function posixQuote(s: string, what: string): string {
    if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
    throw new Error(`real-engine harness: ssh ${what} ${JSON.stringify(s)} would be quoted by docker/cli; not modelled`);
}

/** The argv (without "ssh") docker/cli runs for `host` (an `ssh://` URL) and the provider's `sshOpts`. */
export function dockerSshArgv(host: string, sshOpts: readonly string[] = []): string[] {
    const u = new URL(host);
    if (u.protocol !== "ssh:") throw new Error(`incorrect scheme: ${u.protocol.replace(/:$/, "")}`);
    if (u.password) throw new Error("invalid SSH URL: plain-text password is not supported");
    if (u.search) throw new Error(`invalid SSH URL: query parameters are not allowed: ${JSON.stringify(u.search.slice(1))}`);
    if (u.hash) throw new Error(`invalid SSH URL: fragments are not allowed: ${JSON.stringify(u.hash.slice(1))}`);
    const hostname = u.hostname.replace(/^\[(.*)\]$/, "$1");
    if (!hostname) throw new Error("invalid SSH URL: hostname is empty");
    let flags = [...sshOpts];
    if (!flags.join("").includes("ConnectTimeout")) flags.push("-o ConnectTimeout=30");
    if (!flags.includes("-T")) flags.push("-T");
    const remote = u.pathname.replace(/^\/+|\/+$/g, "") !== "" ? ["docker", `--host=unix://${u.pathname}`, "system", "dial-stdio"] : ["docker", "system", "dial-stdio"];
    const args: string[] = [];
    if (u.username) args.push("-l", posixQuote(decodeURIComponent(u.username), "user"));
    if (u.port) args.push("-p", posixQuote(u.port, "port"));
    return [...args, ...flags, "--", posixQuote(hostname, "host"), remote.map((a) => posixQuote(a, "argument")).join(" ")];
}

/** One `ssh … docker system dial-stdio` process as a socket for Node's http client (commandconn.New). */
function commandConn(argv: string[], env: NodeJS.ProcessEnv, children: Set<ChildProcess>): Duplex {
    const child = spawn("ssh", argv, { env, stdio: ["pipe", "pipe", "pipe"], detached: true });
    children.add(child);
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    child.stdin!.on("error", () => undefined); // EPIPE after ssh exits: the exit status tells why.
    const conn = new Duplex({
        read: () => void child.stdout!.resume(),
        write: (chunk, _enc, cb) => void child.stdin!.write(chunk, cb),
        final: (cb) => {
            child.stdin!.end();
            cb();
        },
        destroy: (err, cb) => {
            if (child.exitCode === null) child.kill("SIGKILL");
            cb(err);
        },
    });
    child.stdout!.on("data", (d) => {
        if (!conn.push(d)) child.stdout!.pause();
    });
    child.on("error", (e) => conn.destroy(e));
    child.on("close", (code, signal) => {
        children.delete(child);
        if (code === 0) conn.push(null);
        else {
            const status = code !== null ? `exit status ${code}` : `signal: ${signal}`;
            conn.destroy(new Error(`command [ssh ${argv.join(" ")}] has exited with ${status}, make sure the URL is valid, and Docker 18.09 or later is installed on the remote host: stderr=${stderr}`));
        }
    });
    // What http.Agent calls on its sockets.
    const socketLike = conn as Duplex & Record<string, unknown>;
    socketLike.setKeepAlive = () => conn;
    socketLike.setNoDelay = () => conn;
    socketLike.setTimeout = () => conn;
    socketLike.ref = () => conn;
    socketLike.unref = () => conn;
    return conn;
}

/** A Docker client whose connections are docker/cli's `ssh` processes; `close()` ends them all. */
export interface SshDockerClient {
    docker: Docker;
    argv: string[];
    /** Docker API requests sent through `ssh` so far. */
    requests(): number;
    close(): void;
}

/**
 * @param env the environment of the `ssh` processes (the provider passes its own, os.Environ()).
 */
export function dockerOverSsh(host: string, sshOpts: readonly string[], env: NodeJS.ProcessEnv): SshDockerClient {
    const argv = dockerSshArgv(host, sshOpts);
    const children = new Set<ChildProcess>();
    const agent = new http.Agent({ keepAlive: true });
    (agent as any).createConnection = () => commandConn(argv, env, children);
    // connhelper.go: Host "http://docker.example.com" (never resolved: the dialer ignores it).
    const docker = new Docker({ protocol: "http", host: "docker.example.com", port: 80, agent } as any);
    let requests = 0;
    const modem = docker.modem as any;
    const dial = modem.dial.bind(modem);
    modem.dial = (options: unknown, callback: unknown) => {
        requests++;
        return dial(options, callback);
    };
    return {
        docker,
        argv,
        requests: () => requests,
        close: () => {
            agent.destroy();
            for (const c of children) c.kill("SIGKILL");
        },
    };
}
