/**
 * Fake of `command:remote:Command`: pulumi/pulumi-command v1.2.1, run over real SSH with the
 * `ssh2` package configured as the provider configures golang.org/x/crypto/ssh (fixed host key,
 * only the pinned key's type, the private key as the only auth method; test/support/remoteHost.ts
 * `runOverSsh`), with the lifecycle of commandLifecycle.ts: a change of `connection` too is an
 * update that runs the script again.
 *
 * Not modelled, on purpose: a connection without `hostKey` (the provider would accept any host
 * key; the program always pins one), `environment` (SSH setenv, which sshd refuses without
 * AcceptEnv), and the provider's dial retries (`dialErrorLimit`): one dial, whose failure fails
 * the step as the last retry would.
 */
import { runOverSsh } from "../remoteHost";
import { commandFake } from "./commandLifecycle";
import { onlyKnownKeys, Props, ResourceFake, Schema } from "./fake";

const CMD = "pulumi/pulumi-command@v1.2.1:provider/pkg/provider";

export const REMOTE_COMMAND_SCHEMA: Schema = {
    connection: { forceNew: false },
    create: { forceNew: false },
    update: { forceNew: false },
    delete: { forceNew: false },
    stdin: { forceNew: false },
    addPreviousOutputInEnv: { forceNew: false, default: true },
    triggers: { forceNew: true },
};

const CONNECTION_KEYS = ["host", "port", "user", "hostKey", "privateKey", "dialErrorLimit", "perDialTimeout"];

/**
 * remote/commandOutputs.go `run`: dial, one session, stdin written then EOF, `session.Run(cmd)`;
 * a non-zero exit fails with `Process exited with status N: running "<cmd>":\n<stdout+stderr>`.
 */
export async function runRemote(i: Props, script: string): Promise<{ stdout: string; stderr: string }> {
    const c = i.connection as Props;
    onlyKnownKeys("remote Command connection", c, CONNECTION_KEYS);
    if (!c.hostKey) throw new Error("real-engine harness: a remote Command without hostKey is not modelled (the provider would accept any host key)");
    const r = await runOverSsh({ host: c.host, port: c.port ?? 22 }, { user: c.user ?? "root", privateKey: c.privateKey, hostKey: c.hostKey, command: script, stdin: i.stdin, timeoutMs: 600_000 });
    if (r.code !== 0) {
        throw new Error(`Process exited with status ${r.code}${r.signal ? ` (signal ${r.signal})` : ""}: running ${JSON.stringify(script.slice(0, 60) + "…")}:\n${[r.stdout, r.stderr].filter(Boolean).join("\n").split("\n").slice(-8).join("\n")}`);
    }
    return { stdout: r.stdout, stderr: r.stderr };
}

export const remoteCommand: ResourceFake = commandFake({
    type: "command:remote:Command",
    mirrors: [`${CMD}/remote/commandController.go (Create, Update, Delete)`, `${CMD}/remote/commandOutputs.go (run)`, `${CMD}/remote/connection.go (SSHConfig)`],
    schema: REMOTE_COMMAND_SCHEMA,
    check: (i) => {
        onlyKnownKeys("command:remote:Command", i, Object.keys(REMOTE_COMMAND_SCHEMA));
        if (i.addPreviousOutputInEnv !== false) throw new Error("real-engine harness: addPreviousOutputInEnv (SSH setenv of the previous output) is not modelled");
    },
    run: runRemote,
});
