/**
 * scripts/reap-test-leftovers.sh for real. A child process creates on this machine what a test
 * run creates — a Btrfs image on a loop device mounted the way BtrfsLoop does, a loop device
 * without a mount, temp folders, a container on its own network and volume, a host-script file,
 * a remote-test-host network namespace with a process in it, a test user with a process, a
 * sudoers file, a state dir whose dockerd is gone, the program's SSH client folder — and is
 * killed with SIGKILL, so none of its cleanup runs. Beside them: decoys without the prefix (a
 * loop device and a mount in /tmp and on a file in /var/tmp, a temp folder, a container, network,
 * volume, user and namespace), and prefixed things that must stay (a folder a live process works
 * in, state dirs whose dockerd is alive or whose pid file is unreadable, the caller's state dir,
 * a prefixed image mounted at a path without the prefix). The reaper runs with `--only <tag>`,
 * so it touches nothing of another run on this shared machine; its live-run check (which `--only`
 * skips) is tested with a dry run.
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { removeSshClientDir, requirePrerequisites, sh, TEST_IMAGE } from "../support/host";
import { REPO_ROOT } from "../support/mockProgram";

const REAPER = path.join(REPO_ROOT, "scripts", "reap-test-leftovers.sh");
const TAG = `r${crypto.randomBytes(5).toString("hex")}`;
const HOME = os.userInfo().homedir;

/** What the killed run leaves, all with the tests' prefixes. */
const L = {
    btrfsDir: `/tmp/mmagent-reap-${TAG}`,
    loopDir: `/tmp/mmagent-reap-${TAG}-loop`,
    hostScript: `/tmp/mmagent-host.${TAG}`,
    stateDead: `/tmp/mmagent-ci-state.${TAG}d`,
    container: `mmtest-reap-${TAG}`,
    network: `mmtest_reap_${TAG}`,
    volume: `mmtest-reap-${TAG}`,
    netns: `mmagent-rh-${TAG}`,
    user: `mmagent-t-${TAG}`,
    sudoers: `/etc/sudoers.d/mmagent-test-${TAG}`,
    sshDir: path.join(HOME, ".mmagent", "ssh", `mmagent.prod.mmtest-${TAG}-host`),
};
/** Prefixed, but must stay while their reason holds. */
const K = {
    busy: `/tmp/mmagent-busy-${TAG}`,
    stateLive: `/tmp/mmagent-ci-state.${TAG}l`,
    stateUnsure: `/tmp/mmagent-ci-state.${TAG}u`,
    stateCaller: `/tmp/mmagent-ci-state.${TAG}c`,
    /** A prefixed image whose loop device is mounted at a path without the prefix. */
    elsewhere: `/tmp/mmagent-reap-${TAG}-elsewhere`,
};
/** Without the prefix: never touched. */
const D = {
    dir: `/tmp/reapdecoy-${TAG}`,
    varTmp: `/var/tmp/reapdecoy-${TAG}`,
    container: `reapdecoy-${TAG}`,
    network: `reapdecoy_${TAG}`,
    volume: `reapdecoy-${TAG}`,
    netns: `reapdecoy-${TAG}`,
    user: `reapdecoy-${TAG}`,
};

const started: ChildProcess[] = [];

interface Reaped {
    status: number | null;
    lines: string[];
    stderr: string;
}

function reap(args: string[], env: NodeJS.ProcessEnv = {}): Reaped {
    const r = spawnSync("bash", [REAPER, ...args], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 120_000 });
    return { status: r.status, lines: r.stdout.split("\n").filter(Boolean).sort(), stderr: r.stderr };
}

/** Attached loop devices and their backing files (sysfs, as the reaper reads them). */
function loops(): { dev: string; file: string }[] {
    return fs
        .readdirSync("/sys/block")
        .filter((d) => d.startsWith("loop") && fs.existsSync(`/sys/block/${d}/loop/backing_file`))
        .map((d) => ({ dev: `/dev/${d}`, file: fs.readFileSync(`/sys/block/${d}/loop/backing_file`, "utf8").trim().replace(/ \(deleted\)$/, "") }));
}
const loopsOn = (file: string) => loops().filter((l) => l.file === file).map((l) => l.dev);
const mountPoints = () => fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter(Boolean).map((l) => l.split(" ")[4]);
const mounted = (p: string) => mountPoints().includes(p);
const dockerHas = (kind: "container" | "network" | "volume", name: string) => spawnSync("docker", [kind, "inspect", name], { stdio: "ignore" }).status === 0;
const userExists = (u: string) => spawnSync("getent", ["passwd", u], { stdio: "ignore" }).status === 0;
const netnsExists = (ns: string) => sh("ip", ["netns", "list"]).split("\n").some((l) => l.split(" ")[0] === ns);
function alive(pid: number): boolean {
    try {
        return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
    } catch {
        return false;
    }
}

/** A process we start and end ourselves (by its pid, in afterAll at the latest). */
function startSleep(opts: { cwd?: string; argv0?: string } = {}): ChildProcess {
    const p = opts.argv0
        ? spawn("bash", ["-c", 'exec -a "$0" sleep 600', opts.argv0], { cwd: opts.cwd ?? "/", stdio: "ignore" })
        : spawn("sleep", ["600"], { cwd: opts.cwd ?? "/", stdio: "ignore" });
    started.push(p);
    return p;
}

function stop(p: ChildProcess): void {
    if (p.pid && p.exitCode === null && p.signalCode === null) process.kill(p.pid, "SIGKILL");
}

/** An image file with a filesystem, attached to a loop device; mounted at `mnt` when given. */
function imageOnLoop(file: string, mnt?: string): string {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    sh("truncate", ["-s", "16M", file]);
    sh("mkfs.ext4", ["-q", "-F", file]);
    const dev = sh("losetup", ["-f", "--show", file]).trim();
    if (mnt) {
        fs.mkdirSync(mnt, { recursive: true });
        sh("mount", [dev, mnt]);
    }
    return dev;
}

/** What a test run creates, done by a child that is then killed with SIGKILL. */
const CHILD = String.raw`
set -euo pipefail
# Like BtrfsLoop: an image with Btrfs, mounted with -o loop.
mkdir -p "$BTRFS_DIR/mnt"
truncate -s 256M "$BTRFS_DIR/pool.img"
mkfs.btrfs -q "$BTRFS_DIR/pool.img"
mount -o loop "$BTRFS_DIR/pool.img" "$BTRFS_DIR/mnt"
echo data >"$BTRFS_DIR/mnt/file"
# A loop device without a mount.
mkdir -p "$LOOP_DIR"
truncate -s 16M "$LOOP_DIR/disk.img"
echo "LOOP $(losetup -f --show "$LOOP_DIR/disk.img")"
# A container on its own network with its own volume.
docker network create "$NETWORK" >/dev/null
docker volume create "$VOLUME" >/dev/null
docker run -d --name "$CONTAINER" --network "$NETWORK" -v "$VOLUME:/data" "$IMAGE" sleep infinity >/dev/null
# The create command's file, from a run an hour ago.
printf '#!/usr/bin/env bash\n' >"$HOST_SCRIPT"
touch -d '1 hour ago' "$HOST_SCRIPT"
# The remote test host's namespace, a session process left in it; a test user with a process.
ip netns add "$NETNS"
ip netns exec "$NETNS" sleep 600 </dev/null >/dev/null 2>&1 &
echo "NSPID $!"
useradd -M -s /usr/sbin/nologin "$TUSER"
runuser -u "$TUSER" -- sleep 600 </dev/null >/dev/null 2>&1 &
echo "USERPID $!"
printf '# test/real/reapLeftovers.test.ts\n' >"$SUDOERS.tmp"
chmod 0440 "$SUDOERS.tmp"
mv "$SUDOERS.tmp" "$SUDOERS"
# A CI state dir whose dockerd is gone.
mkdir -p "$STATE_DEAD"
echo "$DEAD_PID" >"$STATE_DEAD/dockerd.pid"
echo log >"$STATE_DEAD/dockerd.log"
# The program's SSH client folder for a test stack.
mkdir -p "$SSH_DIR"
echo "[10.213.7.2]:2222 ssh-ed25519 AAAA" >"$SSH_DIR/known_hosts"
echo ready
exec sleep 600
`;

/** Runs CHILD, waits for "ready", kills it with SIGKILL; the loop device and orphan pids it printed. */
async function killedRun(): Promise<{ loopDev: string; nsPid: number; userPid: number }> {
    const deadPid = spawnSync("true").pid;
    const child = spawn("bash", ["-c", CHILD], {
        cwd: "/",
        stdio: ["ignore", "pipe", "pipe"],
        env: {
            ...process.env,
            BTRFS_DIR: L.btrfsDir, LOOP_DIR: L.loopDir, NETWORK: L.network, VOLUME: L.volume, CONTAINER: L.container, IMAGE: TEST_IMAGE,
            HOST_SCRIPT: L.hostScript, NETNS: L.netns, TUSER: L.user, SUDOERS: L.sudoers, STATE_DEAD: L.stateDead, DEAD_PID: String(deadPid), SSH_DIR: L.sshDir,
        },
    });
    started.push(child);
    let out = "";
    let err = "";
    child.stderr!.on("data", (d) => (err += d));
    await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the child did not get ready in 60 s: ${err}`)), 60_000);
        child.stdout!.on("data", (d) => {
            out += d;
            if (/^ready$/m.test(out)) {
                clearTimeout(timer);
                resolve();
            }
        });
        child.on("exit", (code) => {
            clearTimeout(timer);
            reject(new Error(`the child exited (${code}) before it was ready: ${err}`));
        });
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    process.kill(child.pid!, "SIGKILL");
    await exited;
    const field = (name: string) => out.match(new RegExp(`^${name} (\\S+)$`, "m"))![1];
    return { loopDev: field("LOOP"), nsPid: Number(field("NSPID")), userPid: Number(field("USERPID")) };
}

async function untilDead(pid: number): Promise<boolean> {
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    return !alive(pid);
}

beforeAll(() => {
    requirePrerequisites({ commands: ["losetup", "mkfs.btrfs", "mkfs.ext4", "mount", "umount", "ip", "useradd", "userdel", "runuser", "truncate"], docker: true, image: true, root: true });
});

afterAll(() => {
    for (const p of started) stop(p);
    // Whatever a failed assertion left: the tagged reaper for the prefixed things, then the decoys by hand.
    reap(["--only", TAG]);
    for (const mnt of mountPoints().filter((m) => m.includes(TAG)).sort((a, b) => b.length - a.length)) spawnSync("umount", ["-l", mnt]);
    for (const l of loops()) if (l.file.includes(TAG)) spawnSync("losetup", ["-d", l.dev]);
    for (const d of [...Object.values(K), L.btrfsDir, L.loopDir, L.stateDead, L.hostScript, D.dir, D.varTmp]) fs.rmSync(d, { recursive: true, force: true });
    spawnSync("docker", ["rm", "-f", L.container, D.container], { stdio: "ignore" });
    for (const n of [L.network, D.network]) spawnSync("docker", ["network", "rm", n], { stdio: "ignore" });
    for (const v of [L.volume, D.volume]) spawnSync("docker", ["volume", "rm", v], { stdio: "ignore" });
    for (const u of [L.user, D.user]) if (userExists(u)) spawnSync("userdel", ["-f", u]);
    for (const ns of [L.netns, D.netns]) if (netnsExists(ns)) spawnSync("ip", ["netns", "del", ns]);
    fs.rmSync(L.sudoers, { force: true });
    // ~/.mmagent and ~/.mmagent/ssh only if that leaves them empty (other tests write there too).
    removeSshClientDir(L.sshDir);
}, 120_000);

test("after a SIGKILLed run, the reaper removes exactly its prefixed leftovers; decoys and what is still in use stay", async () => {
    // Decoys without the prefix, and prefixed things that must stay.
    const decoyMountedLoop = imageOnLoop(path.join(D.dir, "disk.img"), path.join(D.dir, "mnt"));
    const decoyVarTmpLoop = imageOnLoop(path.join(D.varTmp, "disk.img"));
    fs.writeFileSync(path.join(D.dir, "keep.txt"), "mine");
    const elsewhereLoop = imageOnLoop(path.join(K.elsewhere, "pool.img"), path.join(D.dir, "elsewhere-mnt"));
    sh("docker", ["network", "create", D.network]);
    sh("docker", ["volume", "create", D.volume]);
    sh("docker", ["run", "-d", "--name", D.container, "--network", D.network, "-v", `${D.volume}:/data`, TEST_IMAGE, "sleep", "infinity"]);
    sh("useradd", ["-M", "-s", "/usr/sbin/nologin", D.user]);
    sh("ip", ["netns", "add", D.netns]);
    fs.mkdirSync(K.busy);
    const worker = startSleep({ cwd: K.busy });
    const daemon = startSleep();
    for (const [dir, pid] of [[K.stateLive, String(daemon.pid)], [K.stateUnsure, "not-a-pid"], [K.stateCaller, String(spawnSync("true").pid)]]) {
        fs.mkdirSync(dir);
        fs.writeFileSync(path.join(dir, "dockerd.pid"), `${pid}\n`);
        fs.writeFileSync(path.join(dir, "dockerd.log"), "log\n");
    }

    const { loopDev, nsPid, userPid } = await killedRun();
    expect(mounted(path.join(L.btrfsDir, "mnt"))).toBe(true);
    const [btrfsLoopDev] = loopsOn(path.join(L.btrfsDir, "pool.img"));
    expect(btrfsLoopDev).toMatch(/^\/dev\/loop\d+$/);
    expect(loopsOn(path.join(L.loopDir, "disk.img"))).toEqual([loopDev]);
    expect([dockerHas("container", L.container), dockerHas("network", L.network), dockerHas("volume", L.volume)]).toEqual([true, true, true]);
    expect([alive(nsPid), alive(userPid), netnsExists(L.netns), userExists(L.user)]).toEqual([true, true, true, true]);

    const expected = [
        `container ${L.container}`,
        `network ${L.network}`,
        `volume ${L.volume}`,
        `netns ${L.netns}`,
        `user ${L.user}`,
        L.sudoers,
        `mount ${L.btrfsDir}/mnt`,
        // Attached by `mount -o loop`: it goes with the unmount (autoclear), and is reported.
        `loop device ${btrfsLoopDev} (${L.btrfsDir}/pool.img)`,
        `loop device ${loopDev} (${L.loopDir}/disk.img)`,
        L.btrfsDir,
        L.loopDir,
        L.hostScript,
        L.stateDead,
        L.sshDir,
    ];
    const env = { MMAGENT_TEST_STATE: K.stateCaller };

    // A dry run names the same things and changes nothing.
    const dry = reap(["--dry-run", "--only", TAG], env);
    expect(dry.status).toBe(0);
    expect(dry.lines).toEqual(expected.map((e) => `would remove ${e}`).sort());
    expect([mounted(path.join(L.btrfsDir, "mnt")), dockerHas("container", L.container), userExists(L.user), fs.existsSync(L.stateDead)]).toEqual([true, true, true, true]);

    const first = reap(["--only", TAG], env);
    console.log(`scripts/reap-test-leftovers.sh --only ${TAG}:\n${first.lines.join("\n")}\n${first.stderr}`);
    expect(first.status).toBe(0);
    expect(first.lines).toEqual(expected.map((e) => `removed ${e}`).sort());

    // The leftovers are gone, with the processes the killed run left in its namespace and as its user.
    expect(loops().filter((l) => l.file.startsWith(`${L.btrfsDir}/`) || l.file.startsWith(`${L.loopDir}/`))).toEqual([]);
    expect(mountPoints().filter((m) => m.startsWith(`${L.btrfsDir}/`))).toEqual([]);
    for (const p of [L.btrfsDir, L.loopDir, L.hostScript, L.stateDead, L.sudoers, L.sshDir]) expect({ p, exists: fs.existsSync(p) }).toEqual({ p, exists: false });
    expect([dockerHas("container", L.container), dockerHas("network", L.network), dockerHas("volume", L.volume)]).toEqual([false, false, false]);
    expect([netnsExists(L.netns), userExists(L.user)]).toEqual([false, false]);
    expect([await untilDead(nsPid), await untilDead(userPid)]).toEqual([true, true]);

    // Kept, each with its reason.
    expect(first.stderr).toContain(`kept ${K.busy}: in use by a live process`);
    expect(first.stderr).toContain(`kept ${K.stateLive}: dockerd.pid names a process that is alive`);
    expect(first.stderr).toContain(`kept ${K.stateUnsure}: dockerd.pid names a process that is unknown`);
    expect(first.stderr).toContain(`kept ${K.stateCaller}: the caller's MMAGENT_TEST_STATE`);
    expect(first.stderr).toContain(`kept ${elsewhereLoop} (${K.elsewhere}/pool.img): mounted at ${D.dir}/elsewhere-mnt`);
    expect(first.stderr).toContain(`kept ${K.elsewhere}: backs an attached loop device`);
    for (const p of Object.values(K)) expect({ p, exists: fs.existsSync(p) }).toEqual({ p, exists: true });
    expect(mounted(path.join(D.dir, "elsewhere-mnt"))).toBe(true);

    // The decoys are untouched.
    expect(mounted(path.join(D.dir, "mnt"))).toBe(true);
    expect(loopsOn(path.join(D.dir, "disk.img"))).toEqual([decoyMountedLoop]);
    expect(loopsOn(path.join(D.varTmp, "disk.img"))).toEqual([decoyVarTmpLoop]);
    expect(fs.readFileSync(path.join(D.dir, "keep.txt"), "utf8")).toBe("mine");
    expect([dockerHas("container", D.container), dockerHas("network", D.network), dockerHas("volume", D.volume)]).toEqual([true, true, true]);
    expect([userExists(D.user), netnsExists(D.netns)]).toEqual([true, true]);

    // Nothing left to do: a second run removes nothing.
    expect(reap(["--only", TAG], env).lines).toEqual([]);

    // Once the worker and the daemon are gone, their folders go too; an unreadable pid file and the caller's state dir still stay.
    stop(worker);
    stop(daemon);
    expect([await untilDead(worker.pid!), await untilDead(daemon.pid!)]).toEqual([true, true]);
    const second = reap(["--only", TAG], env);
    expect(second.lines).toEqual([`removed ${K.busy}`, `removed ${K.stateLive}`].sort());
    expect([fs.existsSync(K.stateUnsure), fs.existsSync(K.stateCaller)]).toEqual([true, true]);

    // The decoys are ours to remove.
    sh("umount", [path.join(D.dir, "mnt")]);
    sh("umount", [path.join(D.dir, "elsewhere-mnt")]);
    for (const dev of [decoyMountedLoop, decoyVarTmpLoop, elsewhereLoop]) sh("losetup", ["-d", dev]);
    sh("docker", ["rm", "-f", D.container]);
    sh("docker", ["network", "rm", D.network]);
    sh("docker", ["volume", "rm", D.volume]);
    sh("userdel", [D.user]);
    sh("ip", ["netns", "del", D.netns]);
    for (const d of [D.dir, D.varTmp, K.elsewhere, K.stateUnsure, K.stateCaller]) fs.rmSync(d, { recursive: true });
});

test("while another test run of this project is live, nothing is removed (a process of another project does not count)", () => {
    const leftover = `/tmp/mmagent-reap-${TAG}-guard`;
    fs.writeFileSync(leftover, "");
    // A jest of this checkout (its working directory holds this package.json), and one elsewhere.
    const ours = startSleep({ cwd: REPO_ROOT, argv0: "jest" });
    const foreign = startSleep({ cwd: "/", argv0: "jest" });
    try {
        const r = reap(["--dry-run"]);
        expect(r.status).toBe(0);
        expect(r.stderr).toContain(`live test run: pid ${ours.pid}: jest`);
        expect(r.stderr).not.toContain(`pid ${foreign.pid}:`);
        expect(r.stderr).toContain("another test run is live: nothing removed");
        expect(r.lines).toEqual([]);
        expect(fs.existsSync(leftover)).toBe(true);

        stop(ours);
        const after = reap(["--dry-run"]);
        expect(after.stderr).not.toContain(`pid ${ours.pid}:`);
        // Unless someone else's run is live on this machine right now, the leftover would go.
        if (!after.stderr.includes("another test run is live")) expect(after.lines).toContain(`would remove ${leftover}`);
    } finally {
        stop(ours);
        stop(foreign);
        fs.rmSync(leftover, { force: true });
    }
});
