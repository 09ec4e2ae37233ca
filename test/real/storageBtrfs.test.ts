/**
 * StorageLayout's host script on a real Btrfs filesystem (a loop device) and on plain
 * directories, run with exactly the parameters the component passes.
 */
import { execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { ensureParams, restoreParams, snapshotParams } from "../../components/storageLayout";
import { renderScriptStdin, RUN_STDIN_SCRIPT } from "../../components/hostScript";
import { VOLUME_PROFILES, VolumeProfile } from "../../components/types";
import { BtrfsLoop, requirePrerequisites, runHostScript, sh, sha256File, TEST_IMAGE } from "../support/host";

let loop: BtrfsLoop;
let root: string;
const CONTAINER = "mmtest-storage-app";
const backend = () => ({ backend: "btrfs" as const, root });

beforeAll(() => {
    requirePrerequisites({ commands: ["mkfs.btrfs", "btrfs", "lsattr", "chattr", "sqlite3", "flock"], root: true, docker: true, image: true });
    loop = new BtrfsLoop(2048).create();
    root = path.join(loop.mountPoint, "mmagent");
    fs.mkdirSync(root);
    spawnSync("docker", ["rm", "-f", CONTAINER]);
    sh("docker", ["run", "-d", "--init", "--name", CONTAINER, TEST_IMAGE, "sleep", "infinity"]);
});

afterAll(() => {
    spawnSync("docker", ["rm", "-f", CONTAINER]);
    loop?.destroy();
});

function ensure(name: string, profile: VolumeProfile) {
    const r = runHostScript("storage", ensureParams(backend(), { name, profile }));
    if (r.status !== 0) throw new Error(`ensure ${name} failed: ${r.stderr}`);
    return r;
}

function snapshot(volumes: string[], name: string, opts: { keep?: number; container?: string; image?: string; protect?: string } = {}) {
    return runHostScript(
        "storage",
        snapshotParams({ ...backend(), keepSnapshots: opts.keep ?? 10 }, volumes, { container: opts.container ?? "", image: opts.image ?? "app:2", restoreFrom: opts.protect }, name),
    );
}

function snapshotsOf(vol: string): string[] {
    return fs
        .readdirSync(path.join(root, ".snapshots", vol))
        .filter((f) => !f.endsWith(".json"))
        .sort();
}

function btrfsState(vol: string): string {
    const p = path.join(root, vol);
    return [sh("lsattr", ["-d", p]).split(" ")[0], sh("btrfs", ["property", "get", p]).trim(), sh("btrfs", ["subvolume", "list", "-o", loop.mountPoint]).trim()].join("|");
}

describe("ensure", () => {
    test.each(VOLUME_PROFILES)("profile %s: a subvolume with the profile's tuning; a second run changes nothing", (profile) => {
        const name = `p-${profile}`;
        const first = ensure(name, profile);
        expect(first.json).toEqual({ volume: name, path: path.join(root, name), backend: "btrfs" });
        expect(sh("btrfs", ["subvolume", "show", path.join(root, name)])).toContain(name);
        const attrs = sh("lsattr", ["-d", path.join(root, name)]).split(" ")[0];
        expect(attrs.includes("C")).toBe(profile === "db");
        const compression = sh("btrfs", ["property", "get", path.join(root, name), "compression"]).trim();
        expect(compression).toBe(profile === "logs" || profile === "text" ? "compression=zstd" : "");
        const before = btrfsState(name);
        const second = ensure(name, profile);
        expect(second.stdout).toBe(first.stdout);
        expect(second.stderr).not.toMatch(/creating/);
        expect(btrfsState(name)).toBe(before);
    });

    test("a database file created in a db volume is no-CoW", () => {
        ensure("files-db", "db");
        const file = path.join(root, "files-db", "app.sqlite");
        sh("sqlite3", [file, "CREATE TABLE t (x); INSERT INTO t VALUES (1);"]);
        expect(sh("lsattr", [file]).split(" ")[0]).toContain("C");
    });

    test("a path that exists but is not a subvolume is refused, not overwritten", () => {
        fs.mkdirSync(path.join(root, "plain-dir"));
        fs.writeFileSync(path.join(root, "plain-dir", "keep.txt"), "data");
        const r = runHostScript("storage", ensureParams(backend(), { name: "plain-dir", profile: "db" }));
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(/is not a Btrfs subvolume: move it aside/);
        expect(fs.readFileSync(path.join(root, "plain-dir", "keep.txt"), "utf8")).toBe("data");
    });
});

describe("pre-change snapshot and retention", () => {
    beforeAll(() => {
        ensure("ret-db", "db");
        ensure("ret-files", "media");
        fs.writeFileSync(path.join(root, "ret-db", "a.txt"), "v1");
    });

    test("is read-only, carries the project's prefix and records the images", () => {
        const r = snapshot(["ret-db", "ret-files"], "mmagent-pre-00000001", { container: CONTAINER, image: "app:2" });
        expect(r.status).toBe(0);
        expect(r.json).toMatchObject({
            snapshot: "mmagent-pre-00000001",
            image: TEST_IMAGE,
            nextImage: "app:2",
            volumes: { "ret-db": path.join(root, ".snapshots/ret-db/mmagent-pre-00000001"), "ret-files": path.join(root, ".snapshots/ret-files/mmagent-pre-00000001") },
        });
        const snap = path.join(root, ".snapshots/ret-db/mmagent-pre-00000001");
        expect(sh("btrfs", ["property", "get", "-ts", snap, "ro"]).trim()).toBe("ro=true");
        expect(fs.readFileSync(path.join(snap, "a.txt"), "utf8")).toBe("v1");
        expect(() => fs.writeFileSync(path.join(snap, "b.txt"), "x")).toThrow(/EROFS|read-only/);
        // The service was stopped for the snapshot and is running again.
        expect(sh("docker", ["inspect", "-f", "{{.State.Running}}", CONTAINER]).trim()).toBe("true");
        expect(r.stderr).toMatch(/stopping mmtest-storage-app/);
    });

    test("a re-run of the same snapshot changes nothing and does not stop the service", () => {
        const started = sh("docker", ["inspect", "-f", "{{.State.StartedAt}}", CONTAINER]).trim();
        const r = snapshot(["ret-db", "ret-files"], "mmagent-pre-00000001", { container: CONTAINER });
        expect(r.status).toBe(0);
        expect(r.stderr).not.toMatch(/stopping/);
        expect(sh("docker", ["inspect", "-f", "{{.State.StartedAt}}", CONTAINER]).trim()).toBe(started);
        expect(snapshotsOf("ret-db")).toEqual(["mmagent-pre-00000001"]);
    });

    test("retention keeps exactly N of its own and never touches foreign snapshots", () => {
        const dir = path.join(root, ".snapshots/ret-db");
        sh("btrfs", ["subvolume", "snapshot", "-r", path.join(root, "ret-db"), path.join(dir, "nightly-2026-11-01")]);
        sh("btrfs", ["subvolume", "snapshot", "-r", path.join(root, "ret-db"), path.join(dir, "mmagent-manual")]);
        for (let i = 2; i <= 6; i++) expect(snapshot(["ret-db"], `mmagent-pre-0000000${i}`, { keep: 3 }).status).toBe(0);
        expect(snapshotsOf("ret-db")).toEqual(["mmagent-manual", "mmagent-pre-00000004", "mmagent-pre-00000005", "mmagent-pre-00000006", "nightly-2026-11-01"]);
    });

    test("a snapshot named by a pending restoreFrom is never pruned", () => {
        for (let i = 7; i <= 9; i++) expect(snapshot(["ret-db"], `mmagent-pre-0000000${i}`, { keep: 1, protect: "mmagent-pre-00000004" }).status).toBe(0);
        expect(snapshotsOf("ret-db").filter((s) => s.startsWith("mmagent-pre-"))).toEqual(["mmagent-pre-00000004", "mmagent-pre-00000009"]);
    });
});

describe("upgrade drill: snapshot, a migration that goes wrong, restore", () => {
    const vols = ["drill-db", "drill-files"];
    beforeAll(() => {
        ensure("drill-db", "db");
        ensure("drill-files", "media");
    });

    function writeKnownData(round: number): Record<string, string> {
        const db = path.join(root, "drill-db", "app.sqlite");
        fs.rmSync(db, { force: true });
        sh("sqlite3", [db, `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) SELECT 'round ${round} row ' || value FROM generate_series(1, 500);`]);
        const img = path.join(root, "drill-files", "image.bin");
        fs.writeFileSync(img, Buffer.alloc(256 * 1024, round));
        return { db: sha256File(db), img: sha256File(img) };
    }

    test("10 rounds: every byte comes back, together with the image the data belongs to", () => {
        for (let round = 1; round <= 10; round++) {
            const hashes = writeKnownData(round);
            const name = `mmagent-pre-d${String(round).padStart(4, "0")}`;
            const snap = snapshot(vols, name, { container: CONTAINER, image: "app:next", keep: 5 });
            expect(snap.status).toBe(0);
            // The "upgrade": a migration rewrites the schema, then something corrupts the files.
            sh("sqlite3", [path.join(root, "drill-db", "app.sqlite"), "ALTER TABLE notes ADD COLUMN migrated INTEGER; UPDATE notes SET body = 'migrated';"]);
            fs.truncateSync(path.join(root, "drill-files", "image.bin"), 1000);
            expect(sha256File(path.join(root, "drill-db", "app.sqlite"))).not.toBe(hashes.db);

            const restore = runHostScript("storage", restoreParams(backend(), vols, { container: CONTAINER, image: TEST_IMAGE, restoreFrom: name }));
            expect({ round, status: restore.status, stderr: restore.stderr }).toEqual({ round, status: 0, stderr: expect.any(String) });
            expect(restore.json).toMatchObject({ restored: name, replacedBy: expect.stringMatching(/^mmagent-replaced-/), image: TEST_IMAGE });
            expect(sha256File(path.join(root, "drill-db", "app.sqlite"))).toBe(hashes.db);
            expect(sha256File(path.join(root, "drill-files", "image.bin"))).toBe(hashes.img);
            // The restored volume is a writable subvolume again; the replaced state was kept.
            fs.writeFileSync(path.join(root, "drill-db", "after-restore.txt"), "ok");
            expect(snapshotsOf("drill-db")).toContain(restore.json.replacedBy);
            expect(sh("docker", ["inspect", "-f", "{{.State.Running}}", CONTAINER]).trim()).toBe("true");
        }
        // Retention applies to restores' kept states too: never more than keep + the one just made.
        expect(snapshotsOf("drill-db").length).toBeLessThanOrEqual(6);
    });

    test("a restore whose snapshot belongs to another image is refused and changes nothing", () => {
        const hashes = writeKnownData(99);
        expect(snapshot(vols, "mmagent-pre-e0000001", { container: CONTAINER }).status).toBe(0);
        const r = runHostScript("storage", restoreParams(backend(), vols, { container: CONTAINER, image: "other/app:1", restoreFrom: "mmagent-pre-e0000001" }));
        expect(r.status).not.toBe(0);
        expect(r.stderr).toContain(`holds data of image ${TEST_IMAGE}, but the service is configured with other/app:1: set the service's image to ${TEST_IMAGE}`);
        expect(sha256File(path.join(root, "drill-db", "app.sqlite"))).toBe(hashes.db);
    });

    test("after a restore, a container still on the upgraded image stays stopped: it would migrate the restored data again", () => {
        writeKnownData(7);
        expect(snapshot(vols, "mmagent-pre-f0000001", { container: CONTAINER }).status).toBe(0);
        // Another image, as an upgrade is (a second tag of the same image would be the same image:
        // the script compares image IDs, and starts a container whose image the data belongs to).
        const upgraded = "local/mmagent-testbase:upgraded";
        execFileSync("docker", ["build", "-q", "-t", upgraded, "-"], { input: `FROM ${TEST_IMAGE}\nLABEL upgraded=1\n` });
        spawnSync("docker", ["rm", "-f", CONTAINER]);
        sh("docker", ["run", "-d", "--init", "--name", CONTAINER, upgraded, "sleep", "infinity"]);
        try {
            const r = runHostScript("storage", restoreParams(backend(), vols, { container: CONTAINER, image: TEST_IMAGE, restoreFrom: "mmagent-pre-f0000001" }));
            expect({ status: r.status, stderr: r.stderr }).toEqual({
                status: 0,
                stderr: expect.stringContaining(`leaving ${CONTAINER} stopped: it runs ${upgraded}, the restored data belongs to ${TEST_IMAGE}`),
            });
            expect(sh("docker", ["inspect", "-f", "{{.State.Running}}", CONTAINER]).trim()).toBe("false");
        } finally {
            spawnSync("docker", ["rm", "-f", CONTAINER]);
            sh("docker", ["run", "-d", "--init", "--name", CONTAINER, TEST_IMAGE, "sleep", "infinity"]);
            spawnSync("docker", ["rmi", upgraded]);
        }
    });

    test("a restore from a snapshot that does not exist says how to list them", () => {
        const r = runHostScript("storage", restoreParams(backend(), vols, { container: "", image: "x:1", restoreFrom: "mmagent-pre-ffffffff" }));
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(/does not exist; list them with: pulumi stack output snapshots/);
    });
});

describe("a run killed mid-way re-runs to a correct state", () => {
    test("ensure: a subvolume created but not yet tuned gets its tuning", () => {
        sh("btrfs", ["subvolume", "create", path.join(root, "half-db")]);
        ensure("half-db", "db");
        expect(sh("lsattr", ["-d", path.join(root, "half-db")]).split(" ")[0]).toContain("C");
    });

    test("snapshot: taken but its metadata not yet written", () => {
        ensure("half-snap", "text");
        fs.mkdirSync(path.join(root, ".snapshots/half-snap"), { recursive: true });
        sh("btrfs", ["subvolume", "snapshot", "-r", path.join(root, "half-snap"), path.join(root, ".snapshots/half-snap/mmagent-pre-0000aaaa")]);
        const r = snapshot(["half-snap"], "mmagent-pre-0000aaaa");
        expect(r.status).toBe(0);
        expect(r.json.snapshot).toBe("mmagent-pre-0000aaaa");
        expect(snapshotsOf("half-snap")).toEqual(["mmagent-pre-0000aaaa"]);
        expect(fs.existsSync(path.join(root, ".snapshots/half-snap/mmagent-pre-0000aaaa.json"))).toBe(true);
    });

    test("restore: the live volume already moved aside", () => {
        ensure("half-restore", "db");
        fs.writeFileSync(path.join(root, "half-restore", "data"), "good");
        expect(snapshot(["half-restore"], "mmagent-pre-0000bbbb").status).toBe(0);
        // Killed right after `mv live aside`:
        sh("mv", [path.join(root, "half-restore"), path.join(root, ".snapshots/half-restore/mmagent-replaced-manual")]);
        const r = runHostScript("storage", restoreParams(backend(), ["half-restore"], { container: "", image: "x:1", restoreFrom: "mmagent-pre-0000bbbb" }));
        expect(r.status).toBe(0);
        expect(fs.readFileSync(path.join(root, "half-restore", "data"), "utf8")).toBe("good");
    });

    test("snapshot killed at random points (SIGKILL to the whole process group), then re-run", async () => {
        ensure("kill-db", "db");
        fs.writeFileSync(path.join(root, "kill-db", "data"), "precious");
        for (let i = 0; i < 6; i++) {
            const name = `mmagent-pre-k000000${i}`;
            const child = spawn("/bin/sh", ["-c", RUN_STDIN_SCRIPT], { detached: true, stdio: ["pipe", "ignore", "ignore"] });
            child.stdin.end(renderScriptStdin("storage", snapshotParams({ ...backend(), keepSnapshots: 3 }, ["kill-db"], { container: "", image: "a:1" }, name)));
            await new Promise((r) => setTimeout(r, 5 + i * 15));
            try {
                process.kill(-child.pid!, "SIGKILL");
            } catch {
                // Already finished: also a valid point.
            }
            // It may have exited already (then "exit" was emitted before this listener existed).
            if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once("exit", r));
            const again = snapshot(["kill-db"], name, { keep: 3 });
            expect({ i, status: again.status, stderr: again.stderr }).toEqual({ i, status: 0, stderr: expect.any(String) });
            expect(fs.readFileSync(path.join(root, ".snapshots/kill-db", name, "data"), "utf8")).toBe("precious");
            expect(sh("btrfs", ["property", "get", "-ts", path.join(root, ".snapshots/kill-db", name), "ro"]).trim()).toBe("ro=true");
        }
        expect(snapshotsOf("kill-db").filter((s) => s.startsWith("mmagent-pre-k"))).toHaveLength(3);
    }, 120_000);
});

describe("dir backend", () => {
    test("creates directories idempotently and refuses snapshots with a clear message", () => {
        const dirRoot = path.join(loop.dir, "plain");
        const p = { backend: "dir" as const, root: dirRoot };
        const a = runHostScript("storage", ensureParams(p, { name: "agent-db", profile: "db" }));
        const b = runHostScript("storage", ensureParams(p, { name: "agent-db", profile: "db" }));
        expect(a.json).toEqual({ volume: "agent-db", path: path.join(dirRoot, "agent-db"), backend: "dir" });
        expect(b.stdout).toBe(a.stdout);
        expect(fs.statSync(path.join(dirRoot, "agent-db")).isDirectory()).toBe(true);
        const snap = runHostScript("storage", snapshotParams({ ...p, keepSnapshots: 3 }, ["agent-db"], { container: "", image: "x:1" }, "mmagent-pre-00000001"));
        expect(snap.status).not.toBe(0);
        expect(snap.stderr).toMatch(/the dir backend takes no snapshots/);
    });
});
