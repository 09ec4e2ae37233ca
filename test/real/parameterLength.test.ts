/**
 * A host-script parameter too long for the kernel, proven with bash on this machine. The preamble
 * exports every parameter, and the kernel copies at most 131072 bytes per environment string
 * (MAX_ARG_STRLEN, counting `NAME=`, the value and the NUL) at every `execve`: one longer
 * variable makes every command the script runs after it fail with E2BIG ("Argument list too
 * long"), and the script reports whatever that command was for (issue 11: a sysctl value made
 * prepare-host say Docker does not answer).
 *
 * The values go in as raw bytes through `paramLine`, past renderScriptStdin's own refusal (as a
 * caller that bypasses the TypeScript would send them), and run exactly as a deployment runs the
 * program (`runScriptStdin`: `sh -c <create>` with the program on stdin). Each case runs twice:
 * with the preamble line as it was before the size check (decode, export), and with `paramLine`.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { maxParamBytes, paramLine, readHostScript, renderScriptStdin } from "../../components/hostScript";
import { prepareHostParams } from "../../components/nvidiaHost";
import { ensureParams } from "../../components/storageLayout";
import { fakeCommands, requirePrerequisites, runScriptStdin } from "../support/host";

const work = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-paramlength-"));
const fakeBin = path.join(work, "bin");
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** The preamble line before the size check: decode, export. */
function uncheckedParamLine(name: string, bytes: Buffer): string {
    return `${name}="$(printf '%s' '${bytes.toString("base64")}' | base64 -d)"; export ${name}`;
}

/** A program: the rendered preamble of `params`, then `extra` as its last preamble line, then `body`. */
function program(extra: string, body: string, params: Record<string, string> = {}): string {
    const lines = Object.entries(params).map(([k, v]) => paramLine(k, Buffer.from(v)));
    return ["#!/usr/bin/env bash", ...lines, extra, "", body, ""].join("\n");
}

const BIG = Buffer.alloc(200 * 1024, "a");
const TOO_LONG = (name: string, bytes: number) =>
    `mmagent: parameter ${name} is ${bytes} bytes; the kernel passes at most 131072 bytes per variable (NAME=value and a NUL), ` +
    `so at most ${maxParamBytes(name)} for this one, and every command the script ran would fail with "Argument list too long": the script did not start\n`;

test("the check is the only difference between the two preamble lines", () => {
    const checked = paramLine("MMAGENT_BIG", Buffer.from("x"));
    const unchecked = uncheckedParamLine("MMAGENT_BIG", Buffer.from("x"));
    const [decode, exported] = unchecked.split("; ");
    expect(checked.startsWith(`${decode}; `)).toBe(true);
    expect(checked.endsWith(`; ${exported}`)).toBe(true);
    expect(checked).toContain("mmagent_bytes=");
    expect(() => renderScriptStdin("storage", { MMAGENT_BIG: BIG.toString() })).toThrow(/host script parameter MMAGENT_BIG is 204800 bytes/);
});

describe("a 200 KiB parameter, then a script that runs one command (`env true`)", () => {
    const body = "env true && echo 'the command ran'";

    test("without the check: the command fails with E2BIG, and nothing names the parameter", () => {
        const r = runScriptStdin(program(uncheckedParamLine("MMAGENT_BIG", BIG), body), { timeoutMs: 60_000 });
        expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 126, stdout: "" });
        expect(r.stderr).toMatch(/env: Argument list too long/);
        expect(r.stderr).not.toContain("MMAGENT_BIG");
    });

    test("with the check: the program stops in the preamble with one line naming the parameter; the command never runs", () => {
        const r = runScriptStdin(program(paramLine("MMAGENT_BIG", BIG), body), { timeoutMs: 60_000 });
        expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 1, stdout: "", stderr: TOO_LONG("MMAGENT_BIG", BIG.length) });
    });
});

describe("the real scripts, with one parameter over the limit", () => {
    beforeAll(() => {
        requirePrerequisites({ commands: ["flock"], docker: true });
        // Were the script to get past its first command, nothing of this machine's kernel settings changes.
        fakeCommands(fakeBin, path.join(work, "fakes.log"), { sysctl: "exit 0" });
    });
    const env = () => ({ ...process.env, PATH: `${fakeBin}:${process.env.PATH}` });
    // 200 KiB of well-formed values: each script's own checks (bash builtins) pass them.
    const sysctls = Buffer.from(Array.from({ length: 20_000 }, (_, i) => `vm.k${i}=1`).join("\n"));
    const root = Buffer.from(`${work}/${"r".repeat(200 * 1024)}`);
    const CASES = [
        {
            what: "prepare-host, MMAGENT_SYSCTLS",
            script: "prepare-host" as const,
            params: { ...prepareHostParams({ gpus: "none" }), MMAGENT_HOST_ROOT: path.join(work, "host-root") },
            name: "MMAGENT_SYSCTLS",
            value: sysctls,
            // The symptom: the first command the script runs is `docker version`.
            unrelated: /mmagent prepare-host: Docker is installed but its daemon does not answer/,
        },
        {
            what: "storage ensure, MMAGENT_ROOT",
            script: "storage" as const,
            params: ensureParams({ backend: "dir", root: "/placeholder" }, { name: "agent-db", profile: "db" }),
            name: "MMAGENT_ROOT",
            value: root,
            // Its first command is flock, for the host-wide storage lock.
            unrelated: /flock: Argument list too long/,
        },
    ];

    test.each(CASES.map((c) => [c.what, c] as const))("%s: without the check, an unrelated failure; with it, the parameter named", (_what, c) => {
        const rest = Object.fromEntries(Object.entries(c.params).filter(([k]) => k !== c.name));
        const body = readHostScript(c.script);
        expect(c.value.length).toBeGreaterThan(maxParamBytes(c.name));

        const without = runScriptStdin(program(uncheckedParamLine(c.name, c.value), body, rest), { env: env(), timeoutMs: 60_000 });
        expect(without.status).not.toBe(0);
        expect(without.stderr).toMatch(c.unrelated);
        expect(without.stderr).not.toContain(c.name);

        const withCheck = runScriptStdin(program(paramLine(c.name, c.value), body, rest), { env: env(), timeoutMs: 60_000 });
        expect({ status: withCheck.status, stdout: withCheck.stdout, stderr: withCheck.stderr }).toEqual({ status: 1, stdout: "", stderr: TOO_LONG(c.name, c.value.length) });
    });
});

describe("the limit is the kernel's, in bytes", () => {
    const name = "MMAGENT_EDGE";
    const max = maxParamBytes(name);
    const body = "env true && echo 'the command ran'";
    // A UTF-8 locale, where bash's ${#var} counts characters: the check must count bytes.
    const utf8 = { ...process.env, LANG: "C.UTF-8", LC_ALL: "C.UTF-8" };

    test("bash counts characters in this locale (so the cases below mean something)", () => {
        const r = runScriptStdin(program(paramLine("MMAGENT_E", Buffer.from("é")), 'printf "%s" "${#MMAGENT_E}"'), { env: utf8 });
        expect(r.stdout).toBe("1");
    });

    test("exactly the limit: passes the check and the kernel runs the command", () => {
        const r = runScriptStdin(program(paramLine(name, Buffer.alloc(max, "a")), body), { env: utf8 });
        expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: "the command ran\n", stderr: "" });
    });

    test("one byte more: the kernel refuses the command (without the check), and the check refuses the parameter", () => {
        const over = Buffer.alloc(max + 1, "a");
        const without = runScriptStdin(program(uncheckedParamLine(name, over), body), { env: utf8 });
        expect({ status: without.status, e2big: /Argument list too long/.test(without.stderr) }).toEqual({ status: 126, e2big: true });
        const withCheck = runScriptStdin(program(paramLine(name, over), body), { env: utf8 });
        expect({ status: withCheck.status, stderr: withCheck.stderr }).toEqual({ status: 1, stderr: TOO_LONG(name, max + 1) });
    });

    test("fewer characters than the limit but more bytes (2-byte 'é'): refused, counted in bytes", () => {
        const value = Buffer.from("é".repeat(Math.ceil((max + 1) / 2)));
        expect(value.toString().length).toBeLessThan(max);
        const r = runScriptStdin(program(paramLine(name, value), body), { env: utf8 });
        expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 1, stderr: TOO_LONG(name, value.length) });
    });
});
