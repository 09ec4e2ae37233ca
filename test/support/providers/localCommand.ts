/**
 * Fake of `command:local:Command`: pulumi/pulumi-command v1.2.1 (pulumi-go-provider v1.3.0), with
 * the lifecycle of commandLifecycle.ts and scripts run as local/commandOutputs.go runs them.
 */
import { spawn } from "child_process";
import { commandFake } from "./commandLifecycle";
import { onlyKnownKeys, Props, ResourceFake, Schema } from "./fake";

const CMD = "pulumi/pulumi-command@v1.2.1:provider/pkg/provider";

export const LOCAL_COMMAND_SCHEMA: Schema = {
    create: { forceNew: false },
    update: { forceNew: false },
    delete: { forceNew: false },
    stdin: { forceNew: false },
    environment: { forceNew: false },
    interpreter: { forceNew: false },
    dir: { forceNew: false },
    addPreviousOutputInEnv: { forceNew: false, default: true },
    triggers: { forceNew: true },
};

/**
 * local/commandOutputs.go: argv = interpreter + the command, env = the process's plus
 * `environment` (plus the previous stdout/stderr when addPreviousOutputInEnv), stdin written and
 * closed; stdout/stderr with exactly one trailing newline trimmed.
 */
export function runLocal(i: Props, script: string, previous?: Props): Promise<{ stdout: string; stderr: string }> {
    const interpreter: string[] = i.interpreter ?? ["/bin/sh", "-c"];
    const env: Record<string, string> = { ...(process.env as Record<string, string>), ...(i.environment ?? {}) };
    if ((i.addPreviousOutputInEnv ?? true) && previous) {
        env.PULUMI_COMMAND_STDOUT = previous.stdout ?? "";
        env.PULUMI_COMMAND_STDERR = previous.stderr ?? "";
    }
    return new Promise((resolve, reject) => {
        const child = spawn(interpreter[0], [...interpreter.slice(1), script], { env, cwd: i.dir, stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("error", reject);
        child.on("close", (code) => {
            if (code === 0) resolve({ stdout: stdout.replace(/\n$/, ""), stderr: stderr.replace(/\n$/, "") });
            else reject(new Error(`command exited ${code}: ${stderr.trim().split("\n").slice(-5).join(" | ")}`));
        });
        child.stdin.end(i.stdin ?? "");
    });
}

export const localCommand: ResourceFake = commandFake({
    type: "command:local:Command",
    mirrors: [`${CMD}/local/commandController.go (Create, Update, Delete)`, `${CMD}/local/commandOutputs.go (run)`, `${CMD}/common/inputs.go (triggers: replaceOnChanges)`],
    schema: LOCAL_COMMAND_SCHEMA,
    check: (i) => onlyKnownKeys("command:local:Command", i, Object.keys(LOCAL_COMMAND_SCHEMA)),
    run: runLocal,
});
