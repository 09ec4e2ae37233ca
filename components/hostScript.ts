/**
 * Running the project's host scripts (components/scripts/*.sh) on a host, local or over SSH.
 *
 * Parameters never reach a shell as text: each value is base64-encoded (an alphabet with no
 * shell syntax) inside single quotes and decoded into an environment variable by the script's
 * preamble. The whole program goes through stdin, so the same bytes work locally and over SSH
 * (remote `environment` would need AcceptEnv on the server), and tests can run exactly what a
 * deployment runs.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";
import { HostAccess } from "./types";

export type HostScriptName = "prepare-host" | "storage";

export function hostScriptPath(script: HostScriptName): string {
    return path.join(__dirname, "scripts", `${script}.sh`);
}

export function readHostScript(script: HostScriptName): string {
    return fs.readFileSync(hostScriptPath(script), "utf8");
}

/**
 * Where the program is saved before it runs: a fixed template (not `$TMPDIR`), so that a sudoers
 * rule can name the exact command. `mktemp` creates the file 0600 with O_EXCL in sticky `/tmp`, so
 * no other user can swap it.
 */
const SCRIPT_FILE_TEMPLATE = "/tmp/mmagent-host.XXXXXXXXXX";

/**
 * The sudoers line that lets a non-root SSH (or local) user run the host scripts: exactly the
 * command {@link RUN_STDIN_SCRIPT} runs, `/bin/bash` on a file from `mktemp`, with no password
 * (`sudo -n` never prompts). Each `?` matches one character of the `mktemp` suffix.
 *
 * This is root access in practice (the user writes the file it runs); it only avoids a
 * password prompt. Give it to a dedicated deploy user. Install it with
 * `visudo -f /etc/sudoers.d/mmagent`; the error message of {@link RUN_STDIN_SCRIPT} prints the
 * same line for the user it ran as.
 *
 * @param user the login name (`id -un`) that runs pulumi locally, or the SSH user.
 * @returns e.g. `deploy ALL=(root) NOPASSWD: /bin/bash /tmp/mmagent-host.??????????`
 */
export function sudoersLine(user: string): string {
    return `${user} ALL=(root) NOPASSWD: /bin/bash ${SCRIPT_FILE_TEMPLATE.replace(/X/g, "?")}`;
}

/** The one stderr line when a non-root user cannot escalate; `%s` is the user, twice. */
const NO_SUDO_FORMAT =
    "mmagent: user '%s' is not root and `sudo -n /bin/bash FILE` is refused (sudo is not installed, or it would ask for a password). " +
    `Add this line with \`visudo -f /etc/sudoers.d/mmagent\`: ${sudoersLine("%s")}\\n`;

/**
 * The `create` command: saves stdin to a private temporary file and runs it with bash, with
 * stdin closed so nothing in the script can swallow the rest of the program. As root it runs
 * `/bin/bash FILE`; otherwise `sudo -n /bin/bash FILE` (see {@link sudoersLine}). Before the
 * program is written, a non-root user tries that very command on the still empty file, so a
 * missing sudo or a rule that wants a password fails at once with one message that names the
 * user and the sudoers line to add (`sudo -n true` would not do: the rule allows only bash on
 * this file). POSIX sh, and no word splitting (the prefix is kept in `"$@"`): it runs under
 * `/bin/sh -c` locally and under the user's login shell over SSH.
 */
export const RUN_STDIN_SCRIPT =
    `set -e; f=$(mktemp ${SCRIPT_FILE_TEMPLATE}); trap 'rm -f "$f"' EXIT; set --; ` +
    `if [ "$(id -u)" != 0 ]; then set -- sudo -n; "$@" /bin/bash "$f" </dev/null >/dev/null 2>&1 || ` +
    `{ u=$(id -un); printf "${NO_SUDO_FORMAT.replace(/[`"$\\]/g, "\\$&")}" "$u" "$u" >&2; exit 1; }; fi; ` +
    `cat >"$f"; "$@" /bin/bash "$f" </dev/null`;

const PARAM_NAME = /^MMAGENT_[A-Z0-9_]+$/;

/** The program sent on stdin: a preamble that decodes the parameters, then the script. */
export function renderScriptStdin(script: HostScriptName, params: Record<string, string>): string {
    const preamble = Object.entries(params).map(([name, value]) => {
        if (value.includes("\0")) throw new Error(`host script parameter ${name} contains a NUL byte`);
        return paramLine(name, Buffer.from(value, "utf8"));
    });
    return ["#!/usr/bin/env bash", "# parameters (base64, decoded here)", ...preamble, "", readHostScript(script)].join("\n");
}

/**
 * One preamble line: the bytes base64-encoded (no shell syntax can survive that alphabet) and
 * decoded into an exported variable. Exported so tests can send bytes that are not text.
 */
export function paramLine(name: string, bytes: Buffer): string {
    if (!PARAM_NAME.test(name)) throw new Error(`host script parameter ${name} must match ${PARAM_NAME}`);
    return `${name}="$(printf '%s' '${bytes.toString("base64")}' | base64 -d)"; export ${name}`;
}

export interface HostScriptArgs {
    script: HostScriptName;
    /** Parameters (`MMAGENT_*`), resolved to strings before rendering. */
    params: pulumi.Input<Record<string, pulumi.Input<string>>>;
    /** Values whose change replaces the command, i.e. runs it again as a new step. */
    triggers?: pulumi.Input<unknown>[];
    /**
     * What an input change other than `triggers` does: "rerun" runs the script again (for
     * idempotent scripts), "nothing" keeps the earlier result (for one-shot steps like a restore).
     * @default "rerun"
     */
    onUpdate?: "rerun" | "nothing";
}

/** Creates a local or remote Command that runs a host script with parameters. */
export function hostScriptCommand(
    name: string,
    access: HostAccess,
    args: HostScriptArgs,
    opts: pulumi.CustomResourceOptions,
): command.local.Command | command.remote.Command {
    const stdin = pulumi.output(args.params).apply((p) => renderScriptStdin(args.script, p as Record<string, string>));
    const update = (args.onUpdate ?? "rerun") === "rerun" ? RUN_STDIN_SCRIPT : "true";
    const common = {
        create: RUN_STDIN_SCRIPT,
        update,
        stdin,
        triggers: args.triggers,
        addPreviousOutputInEnv: false,
    };
    if (access.connection.kind === "local") {
        return new command.local.Command(name, { ...common, interpreter: ["/bin/sh", "-c"] }, opts);
    }
    const c = access.connection;
    return new command.remote.Command(
        name,
        {
            ...common,
            connection: {
                host: c.host,
                port: c.port,
                user: c.user,
                hostKey: c.hostKey,
                privateKey: access.privateKey,
                dialErrorLimit: 10,
                perDialTimeout: 15,
            },
        },
        opts,
    );
}

/** Parses a script's JSON stdout; the message names the step when the output is not JSON. */
export function parseScriptOutput<T>(step: string, stdout: string): T {
    const line = stdout.trim().split("\n").pop() ?? "";
    try {
        return JSON.parse(line) as T;
    } catch {
        throw new Error(`${step}: expected one JSON line on stdout, got: ${line.slice(0, 200)}`);
    }
}
