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

/** The host scripts in components/scripts (dist/scripts in the package), without `.sh`. */
export type HostScriptName = "prepare-host" | "storage" | "proxy-config" | "status";

/** Absolute path of a host script next to this module. */
export function hostScriptPath(script: HostScriptName): string {
    return path.join(__dirname, "scripts", `${script}.sh`);
}

/** A host script's text. */
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

/**
 * The most bytes the kernel copies for one environment string at `execve`: MAX_ARG_STRLEN,
 * 32 pages, i.e. 131072 with 4 KiB pages (larger pages only raise it), counting `NAME=`, the value
 * and the terminating NUL. The preamble exports every parameter, so one longer variable makes
 * every command the script later runs fail with E2BIG ("Argument list too long"), whatever that
 * command is: `docker version` would report "Docker ... does not answer". Config validation keeps
 * each value far below this (the limits in validators.ts `LIMITS`); this is the last line.
 */
export const MAX_ENV_STRING_BYTES = 131072;

/** The most bytes a parameter's value may have: {@link MAX_ENV_STRING_BYTES} less `NAME=` and the NUL. */
export function maxParamBytes(name: string): number {
    return MAX_ENV_STRING_BYTES - Buffer.byteLength(name) - 2;
}

/** Why a parameter is refused for its size; `bytes` is a number, or a printf `%s` in the preamble. */
function paramTooLong(name: string, bytes: string): string {
    return (
        `parameter ${name} is ${bytes} bytes; the kernel passes at most ${MAX_ENV_STRING_BYTES} bytes per variable (NAME=value and a NUL), ` +
        `so at most ${maxParamBytes(name)} for this one, and every command the script ran would fail with "Argument list too long"`
    );
}

function checkParamName(name: string): void {
    if (!PARAM_NAME.test(name)) throw new Error(`host script parameter ${name} must match ${PARAM_NAME}`);
}

/**
 * The program sent on stdin: a preamble that decodes the parameters, then the script. Refuses a
 * NUL byte (an environment variable cannot hold one) and a value over {@link maxParamBytes}, each
 * naming the parameter, before anything reaches a host.
 */
export function renderScriptStdin(script: HostScriptName, params: Record<string, string>): string {
    const preamble = Object.entries(params).map(([name, value]) => {
        checkParamName(name);
        if (value.includes("\0")) throw new Error(`host script parameter ${name} contains a NUL byte`);
        const bytes = Buffer.from(value, "utf8");
        if (bytes.length > maxParamBytes(name)) throw new Error(`host script ${paramTooLong(name, String(bytes.length))}: nothing was sent to the host`);
        return paramLine(name, bytes);
    });
    return ["#!/usr/bin/env bash", "# parameters (base64, decoded here)", ...preamble, "", readHostScript(script)].join("\n");
}

/**
 * One preamble line: the bytes base64-encoded (no shell syntax can survive that alphabet) and
 * decoded into a variable, whose size in bytes (`${#…}` under `LC_ALL=C`, in a subshell so the
 * caller's locale stays) is checked before it is exported: a value the kernel would refuse at
 * every later `execve` stops the program here with one stderr line naming the parameter. Only
 * builtins run between the decoding and the check, and each earlier variable is already checked,
 * so nothing can fail with E2BIG first. Exported so tests can send bytes that are not text (or
 * too many of them), which {@link renderScriptStdin} would refuse.
 */
export function paramLine(name: string, bytes: Buffer): string {
    checkParamName(name);
    return (
        `${name}="$(printf '%s' '${bytes.toString("base64")}' | base64 -d)"; ` +
        `mmagent_bytes="$(LC_ALL=C; printf '%s' "\${#${name}}")"; ` +
        `if [ "$mmagent_bytes" -gt ${maxParamBytes(name)} ]; then printf 'mmagent: ${paramTooLong(name, "%s")}: the script did not start\\n' "$mmagent_bytes" >&2; exit 1; fi; ` +
        `export ${name}`
    );
}

/** What {@link hostScriptCommand} runs. */
export interface HostScriptArgs {
    /** Which host script runs. */
    script: HostScriptName;
    /** Parameters (`MMAGENT_*`), resolved to strings before rendering. */
    params: pulumi.Input<Record<string, pulumi.Input<string>>>;
    /**
     * Values whose change replaces the command, i.e. runs it again as a new step.
     * @default none (only a change of the command's other inputs runs it again, as `onUpdate` says)
     */
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
