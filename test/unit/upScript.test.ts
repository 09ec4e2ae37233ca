/**
 * The README's two commands on a fresh machine: `npm run up` (scripts/up.sh) obtains the pinned
 * Pulumi CLI and checks Docker before deploying; `npm test` (scripts/test.sh) provisions the test
 * host itself and stops what it started, or says what to run. Each script runs from a copy in a
 * temporary project, with fakes of everything it calls (pulumi, docker, id, npx, the installer,
 * scripts/test-host.sh) on a PATH of only those fakes and a few system tools: nothing real is
 * installed, started or stopped, and nothing goes to the network.
 */
jest.mock("@pulumi/pulumi/automation/index.js", () => ({
    PulumiCommand: { install: jest.fn(async (opts: { root: string }) => ({ command: `${opts.root}/bin/pulumi` })) },
}));

import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { PulumiCommand } from "@pulumi/pulumi/automation/index.js";
import { version as sdkVersion } from "@pulumi/pulumi/version";
import { installPulumiCli } from "../../scripts/lib/pulumiCli";

const REPO = path.join(__dirname, "..", "..");
const PIN: string = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")).config.pulumiCliVersion;
const SYSTEM_TOOLS = ["bash", "cat", "grep", "head", "tail", "mkdir", "dirname", "sed", "mktemp", "rm", "timeout", "sleep", "chmod", "env", "mv"];

/** A temporary copy of the project's entry scripts with a bin folder of fakes. */
class Sandbox {
    readonly dir = fs.mkdtempSync("/tmp/mmagent-upscript-");
    readonly project = path.join(this.dir, "project");
    readonly bin = path.join(this.dir, "bin");
    readonly log = path.join(this.dir, "calls.log");
    readonly pids = path.join(this.dir, "pids");

    constructor() {
        fs.mkdirSync(path.join(this.project, "scripts", "lib"), { recursive: true });
        fs.mkdirSync(path.join(this.project, "node_modules"));
        for (const f of ["scripts/up.sh", "scripts/test.sh", "package.json", "Pulumi.dev.yaml", "Pulumi.prod.yaml"]) {
            fs.copyFileSync(path.join(REPO, f), path.join(this.project, f));
        }
        fs.mkdirSync(this.bin);
        for (const tool of SYSTEM_TOOLS) {
            const found = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim();
            if (!found) throw new Error(`${tool} is not installed`);
            fs.symlinkSync(found, path.join(this.bin, tool));
        }
        fs.symlinkSync(process.execPath, path.join(this.bin, "node"));
        fs.writeFileSync(this.log, "");
        fs.writeFileSync(this.pids, "");
    }

    /** An executable bash script that logs `<its file name> <args>` and then runs `body`. */
    fake(file: string, body: string): string {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, `#!/bin/bash\necho "\${0##*/} $*" >>"$FAKE_LOG"\n${body}\n`, { mode: 0o755 });
        return file;
    }

    /** A fake Pulumi CLI: logs where it runs from and what the deployment would get. */
    fakePulumi(file: string, version: string): string {
        return this.fake(file, `echo "  from $0" >>"$FAKE_LOG"
case "$1" in
  version) echo "v${version}" ;;
  whoami) exit 1 ;;
  stack) [[ "$2" == select ]] && exit 1; exit 0 ;;
  up) echo "  backend=$PULUMI_BACKEND_URL passphrase=\${PULUMI_CONFIG_PASSPHRASE+set}" >>"$FAKE_LOG" ;;
esac`);
    }

    /** A fake of the installer's contract: `<installer> ROOT VERSION` leaves ROOT/bin/pulumi. */
    fakeInstaller(): string {
        const pulumi = this.fakePulumi(path.join(this.dir, "pulumi-template"), "__VERSION__");
        return this.fake(path.join(this.dir, "installer"), `mkdir -p "$1/bin" && sed "s/__VERSION__/$2/" "${pulumi}" >"$1/bin/pulumi" && chmod 755 "$1/bin/pulumi"`);
    }

    fakeDocker(answers: boolean): void {
        this.fake(path.join(this.bin, "docker"), answers
            ? `echo "Server: Docker Engine"`
            : `echo "Client: Docker Engine"; echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1`);
    }

    run(script: string, env: Record<string, string> = {}): { status: number | null; stderr: string; calls: string[] } {
        const r = spawnSync(path.join(this.bin, "bash"), [path.join(this.project, script)], { env: this.env(env), encoding: "utf8", timeout: 60_000 });
        return { status: r.status, stderr: r.stderr, calls: this.calls() };
    }

    env(extra: Record<string, string>): NodeJS.ProcessEnv {
        return { PATH: this.bin, HOME: this.dir, FAKE_LOG: this.log, FAKE_PIDS: this.pids, ...extra };
    }

    calls(): string[] {
        return fs.readFileSync(this.log, "utf8").split("\n").filter((l) => l !== "");
    }

    cleanup(): void {
        // The state dirs a test.sh under test made for itself (kept when it failed).
        for (const m of fs.readFileSync(this.log, "utf8").matchAll(/^ {2}state=(\/tmp\/mmagent-test-state\.\w+)$/gm)) {
            fs.rmSync(m[1], { recursive: true, force: true });
        }
        for (const pid of fs.readFileSync(this.pids, "utf8").split("\n").filter(Boolean)) {
            try {
                process.kill(Number(pid), "SIGKILL");
            } catch {
                // already gone
            }
        }
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

const distinct = (xs: string[]) => [...new Set(xs)];

let box: Sandbox;
beforeEach(() => (box = new Sandbox()));
afterEach(() => box.cleanup());

describe("npm run up (scripts/up.sh)", () => {
    test("the pinned CLI version matches the installed @pulumi/pulumi SDK's major.minor", () => {
        expect(PIN).toMatch(/^\d+\.\d+\.\d+$/);
        expect(PIN.split(".").slice(0, 2)).toEqual(sdkVersion.split(".").slice(0, 2));
    });

    test("no Pulumi CLI: the installer runs once with the project's .pulumi-cli and the pinned version, and that binary deploys", () => {
        box.fakeDocker(true);
        const installer = box.fakeInstaller();
        const root = path.join(box.project, ".pulumi-cli");
        const r = box.run("scripts/up.sh", { MMAGENT_PULUMI_INSTALLER: installer });
        expect({ status: r.status, stderr: r.status === 0 ? "" : r.stderr }).toEqual({ status: 0, stderr: "" });
        expect(r.calls.filter((c) => c.startsWith("installer"))).toEqual([`installer ${root} ${PIN}`]);
        // Every pulumi call went to the installed binary; the deployment kept up.sh's settings.
        expect(distinct(r.calls.filter((c) => c.startsWith("  from")))).toEqual([`  from ${root}/bin/pulumi`]);
        expect(r.calls.filter((c) => c.startsWith("pulumi"))).toEqual([
            `pulumi version`, `pulumi whoami`, `pulumi stack select dev`, `pulumi stack init dev`, `pulumi up --stack dev`,
        ]);
        expect(r.calls).toContain(`  backend=file://${box.project}/.pulumi-state passphrase=set`);
        expect(r.stderr).toContain(`installing Pulumi CLI v${PIN} into .pulumi-cli/`);
        expect(fs.readFileSync(path.join(root, ".gitignore"), "utf8")).toMatch(/^\*$/m);
        // The next run finds it: no second install.
        fs.writeFileSync(box.log, "");
        const again = box.run("scripts/up.sh", { MMAGENT_PULUMI_INSTALLER: installer });
        expect(again.status).toBe(0);
        expect(again.calls.filter((c) => c.startsWith("installer"))).toEqual([]);
        expect(again.calls).toContain(`pulumi up --stack dev`);
    });

    test("a pulumi on PATH: no install, and that CLI deploys", () => {
        box.fakeDocker(true);
        box.fakePulumi(path.join(box.bin, "pulumi"), "3.100.0");
        const r = box.run("scripts/up.sh", { MMAGENT_PULUMI_INSTALLER: box.fakeInstaller() });
        expect(r.status).toBe(0);
        expect(r.calls.filter((c) => c.startsWith("installer"))).toEqual([]);
        expect(distinct(r.calls.filter((c) => c.startsWith("  from")))).toEqual([`  from ${box.bin}/pulumi`]);
        expect(r.calls).toContain(`pulumi up --stack dev`);
        expect(fs.existsSync(path.join(box.project, ".pulumi-cli"))).toBe(false);
    });

    test("the project's CLI at another version than the pin is replaced by the pinned one", () => {
        box.fakeDocker(true);
        const root = path.join(box.project, ".pulumi-cli");
        box.fakePulumi(path.join(root, "bin", "pulumi"), "3.1.0");
        const r = box.run("scripts/up.sh", { MMAGENT_PULUMI_INSTALLER: box.fakeInstaller() });
        expect(r.status).toBe(0);
        expect(r.calls.filter((c) => c.startsWith("installer"))).toEqual([`installer ${root} ${PIN}`]);
        expect(r.stderr).toContain(`is v3.1.0, the pin is v${PIN}`);
    });

    test("Docker does not answer: exit 1 naming what to do, before any install or pulumi", () => {
        box.fakeDocker(false);
        const r = box.run("scripts/up.sh", { MMAGENT_PULUMI_INSTALLER: box.fakeInstaller() });
        expect(r.status).toBe(1);
        expect(r.stderr).toContain("Docker does not answer (`docker version` failed: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?)");
        expect(r.stderr).toContain("sudo systemctl start docker");
        expect(r.calls).toEqual(["docker version"]);
    });

    test("no docker command at all: exit 1 saying how to install it", () => {
        const r = box.run("scripts/up.sh", { MMAGENT_PULUMI_INSTALLER: box.fakeInstaller() });
        expect(r.status).toBe(1);
        expect(r.stderr).toContain("The Docker CLI is not installed");
        expect(r.stderr).toContain("sudo apt-get install docker.io");
        expect(r.calls).toEqual([]);
    });

    test("a stack on an SSH host needs no local engine", () => {
        box.fakeDocker(false);
        box.fakePulumi(path.join(box.bin, "pulumi"), PIN);
        const r = box.run("scripts/up.sh", { STACK: "prod", PULUMI_CONFIG_PASSPHRASE: "x" });
        expect(r.status).toBe(0);
        expect(r.calls.filter((c) => c.startsWith("docker"))).toEqual([]);
        expect(r.calls).toContain("pulumi up --stack prod");
    });

    test("a failing installer: exit 1 with the manual command, and no pulumi runs", () => {
        box.fakeDocker(true);
        const installer = box.fake(path.join(box.dir, "installer"), `echo "Failed to download https://get.pulumi.com/install.sh: fetch failed" >&2; exit 1`);
        const r = box.run("scripts/up.sh", { MMAGENT_PULUMI_INSTALLER: installer });
        expect(r.status).toBe(1);
        expect(r.stderr).toContain("fetch failed");
        expect(r.stderr).toContain(`curl -fsSL https://get.pulumi.com | sh -s -- --version ${PIN}`);
        expect(r.calls.filter((c) => c.startsWith("pulumi"))).toEqual([]);
    });

    test("the default installer is the Automation API's PulumiCommand.install with the root and the version as a SemVer", async () => {
        const install = PulumiCommand.install as jest.Mock;
        install.mockClear();
        await expect(installPulumiCli("/opt/p/.pulumi-cli", "3.270.0")).resolves.toBe("/opt/p/.pulumi-cli/bin/pulumi");
        expect(install).toHaveBeenCalledTimes(1);
        const opts = install.mock.calls[0][0];
        expect({ root: opts.root, version: opts.version.version, major: opts.version.major }).toEqual({ root: "/opt/p/.pulumi-cli", version: "3.270.0", major: 3 });
        await expect(installPulumiCli("/opt/p/.pulumi-cli", "latest")).rejects.toThrow(/not a Pulumi CLI version: "latest"/);
        expect(install).toHaveBeenCalledTimes(1);
    });
});

describe("npm test (scripts/test.sh)", () => {
    const DEFAULT_STATE = () => path.join(box.dir, "default-state");

    /** Fakes of id, docker, npx and the project's test-host.sh and reaper. */
    function fakeTestTools(opts: { uid: number; engine: boolean }): void {
        box.fake(path.join(box.bin, "id"), `[[ "$1" == -u ]] && echo ${opts.uid}`);
        box.fake(path.join(box.bin, "docker"), opts.engine ? "exit 0" : "exit 1");
        box.fake(path.join(box.bin, "npx"), `echo "  state=$MMAGENT_TEST_STATE" >>"$FAKE_LOG"; [[ -n "\${FAKE_FAIL:-}" && "$*" == *"$FAKE_FAIL"* ]] && exit 1; exit 0`);
        box.fake(path.join(box.project, "scripts", "reap-test-leftovers.sh"), `echo "  state=$MMAGENT_TEST_STATE" >>"$FAKE_LOG"`);
        // Its STATE_DIR line is where test.sh reads the default state dir from. `up` "starts
        // dockerd" (a sleep) when FAKE_UP_STARTS is set; `down` stops the one in its state dir.
        box.fake(path.join(box.project, "scripts", "test-host.sh"), `STATE_DIR="\${MMAGENT_TEST_STATE:-${DEFAULT_STATE()}}"
echo "  state=$STATE_DIR" >>"$FAKE_LOG"
case "$1" in
  up) mkdir -p "$STATE_DIR"
      if [[ -n "\${FAKE_UP_STARTS:-}" ]]; then sleep 600 >/dev/null 2>&1 </dev/null & echo $! >"$STATE_DIR/dockerd.pid"; echo $! >>"$FAKE_PIDS"; fi ;;
  down) if [[ -f "$STATE_DIR/dockerd.pid" ]]; then kill "$(cat "$STATE_DIR/dockerd.pid")"; rm -f "$STATE_DIR/dockerd.pid"; fi ;;
esac`);
    }
    const running = (pid: number) => {
        try {
            return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
        } catch {
            return false;
        }
    };
    const startedPids = () => fs.readFileSync(box.pids, "utf8").split("\n").filter(Boolean).map(Number);

    test.each([
        ["no engine", false],
        ["an engine (the real-engine tests still need root)", true],
    ])("not root, %s: prints `sudo npm test` and exits 1 before anything runs", (_what, engine) => {
        fakeTestTools({ uid: 1000, engine });
        const r = box.run("scripts/test.sh");
        expect(r.status).toBe(1);
        expect(r.stderr).toContain("the real-engine tests need root");
        expect(r.stderr).toMatch(/^ {2}sudo npm test$/m);
        expect(r.stderr).toContain("npm run test:unit");
        expect(r.calls.filter((c) => !c.startsWith("id ") && !c.startsWith("docker "))).toEqual([]);
    });

    test("root, no MMAGENT_TEST_STATE: test-host.sh up with a state dir of its own, every step sees it, and down stops the engine it started", () => {
        fakeTestTools({ uid: 0, engine: false });
        const r = box.run("scripts/test.sh", { FAKE_UP_STARTS: "1" });
        expect({ status: r.status, stderr: r.status === 0 ? "" : r.stderr }).toEqual({ status: 0, stderr: "" });
        const state = /^ {2}state=(\/tmp\/mmagent-test-state\.\w+)$/m.exec(r.calls.join("\n"))?.[1];
        expect(state).toBeDefined();
        expect(r.calls.filter((c) => !/^(id|docker) /.test(c))).toEqual([
            "test-host.sh up", `  state=${state}`,
            "reap-test-leftovers.sh ", `  state=${state}`,
            "npx tsc --noEmit -p .", `  state=${state}`,
            "npx jest --selectProjects unit", `  state=${state}`,
            "npx jest --selectProjects real --runInBand", `  state=${state}`,
            "npx jest --selectProjects e2e --runInBand", `  state=${state}`,
            "test-host.sh down", `  state=${state}`,
        ]);
        expect(startedPids().filter(running)).toEqual([]);
        expect(fs.existsSync(state!)).toBe(false);
    });

    test("root, a failing real-engine test: the exit status is the test's, and the engine it started is stopped", () => {
        fakeTestTools({ uid: 0, engine: false });
        const r = box.run("scripts/test.sh", { FAKE_UP_STARTS: "1", FAKE_FAIL: "real" });
        expect(r.status).toBe(1);
        expect(r.calls.filter((c) => /^(npx|test-host)/.test(c))).toEqual([
            "test-host.sh up", "npx tsc --noEmit -p .", "npx jest --selectProjects unit", "npx jest --selectProjects real --runInBand", "test-host.sh down",
        ]);
        expect(startedPids()).toHaveLength(1);
        expect(startedPids().filter(running)).toEqual([]);
        const state = /the test host's logs: (\S+)/.exec(r.stderr)?.[1];
        expect(state).toMatch(/^\/tmp\/mmagent-test-state\./);
        expect(fs.existsSync(state!)).toBe(true);
    });

    test("killed by SIGTERM while the tests run: the engine it started is stopped", async () => {
        fakeTestTools({ uid: 0, engine: false });
        // The unit run blocks in a sleep whose pid the test holds: the test ends it by that pid.
        const gate = path.join(box.dir, "gate");
        box.fake(path.join(box.bin, "npx"), `[[ "$*" == *unit* ]] || exit 0
sleep 60 >/dev/null 2>&1 </dev/null & echo $! >>"$FAKE_PIDS"; echo $! >"${gate}.tmp"; mv "${gate}.tmp" "${gate}"; wait $!`);
        const child = spawn(path.join(box.bin, "bash"), [path.join(box.project, "scripts/test.sh")], { env: box.env({ FAKE_UP_STARTS: "1" }), stdio: "ignore" });
        const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
        for (let i = 0; i < 200 && !fs.existsSync(gate); i++) await new Promise((r) => setTimeout(r, 50));
        const sleeper = Number(fs.readFileSync(gate, "utf8"));
        expect(startedPids().filter((p) => p !== sleeper && running(p))).toHaveLength(1);
        child.kill("SIGTERM");
        // bash runs its trap once the foreground command returns.
        process.kill(sleeper, "SIGTERM");
        expect(await exited).toBe(143);
        const calls = box.calls();
        expect(calls.filter((c) => /^(npx|test-host)/.test(c))).toEqual(["test-host.sh up", "npx tsc --noEmit -p .", "npx jest --selectProjects unit", "test-host.sh down"]);
        expect(startedPids().filter(running)).toEqual([]);
        expect(calls.find((c) => c.startsWith("  state="))).toMatch(/^ {2}state=\/tmp\/mmagent-test-state\./);
    }, 30_000);

    test("MMAGENT_TEST_STATE set and its engine answers: nothing is started or stopped", () => {
        fakeTestTools({ uid: 0, engine: true });
        const caller = path.join(box.dir, "caller-state");
        const r = box.run("scripts/test.sh", { MMAGENT_TEST_STATE: caller });
        expect(r.status).toBe(0);
        expect(r.calls.filter((c) => c.startsWith("test-host"))).toEqual([]);
        expect(distinct(r.calls.filter((c) => c.startsWith("  state=")))).toEqual([`  state=${caller}`]);
        expect(r.stderr).toContain("starting and stopping nothing");
    });

    test("MMAGENT_TEST_STATE set but no engine answers: up with that state dir, and down stops only what that started", () => {
        fakeTestTools({ uid: 0, engine: false });
        const caller = path.join(box.dir, "caller-state");
        const r = box.run("scripts/test.sh", { MMAGENT_TEST_STATE: caller, FAKE_UP_STARTS: "1" });
        expect(r.status).toBe(0);
        expect(r.calls.filter((c) => c.startsWith("test-host"))).toEqual(["test-host.sh up", "test-host.sh down"]);
        expect(distinct(r.calls.filter((c) => c.startsWith("  state=")))).toEqual([`  state=${caller}`]);
        expect(startedPids().filter(running)).toEqual([]);
        expect(fs.existsSync(caller)).toBe(true);

        // up found its dockerd already there (a live pid before and after): not ours to stop.
        fs.writeFileSync(box.log, "");
        fs.writeFileSync(path.join(caller, "dockerd.pid"), String(process.pid));
        const second = box.run("scripts/test.sh", { MMAGENT_TEST_STATE: caller });
        expect(second.status).toBe(0);
        expect(second.calls.filter((c) => c.startsWith("test-host"))).toEqual(["test-host.sh up"]);
    });

    test("root, an engine that `scripts/test-host.sh up` started by hand (its default state dir): used, nothing started or stopped", () => {
        fakeTestTools({ uid: 0, engine: true });
        fs.mkdirSync(DEFAULT_STATE());
        fs.writeFileSync(path.join(DEFAULT_STATE(), "dockerd.pid"), String(process.pid));
        const r = box.run("scripts/test.sh");
        expect(r.status).toBe(0);
        expect(r.calls.filter((c) => c.startsWith("test-host"))).toEqual([]);
        expect(distinct(r.calls.filter((c) => c.startsWith("  state=")))).toEqual([`  state=${DEFAULT_STATE()}`]);
    });
});
