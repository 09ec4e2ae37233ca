/**
 * storage.backend auto, decided on the host by the storage script (storage.sh `resolve_backend`):
 * a root on a real Btrfs filesystem (a loop device) is Btrfs, a root in a plain directory (ext4,
 * overlay, …) is dir. Run with exactly the parameters the component passes. ZFS detection is in
 * storageZfsCommands.test.ts (exact commands: this kernel has no ZFS module).
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { detectParams, ensureParams, restoreParams, snapshotParams } from "../../components/storageLayout";
import { BtrfsLoop, requirePrerequisites, runHostScript, sh } from "../support/host";

const auto = (root: string) => ({ backend: "auto" as const, root });
let loop: BtrfsLoop;
let plain: string;

beforeAll(() => {
    requirePrerequisites({ commands: ["mkfs.btrfs", "btrfs", "lsattr", "chattr", "flock", "stat"], root: true });
    loop = new BtrfsLoop(512).create();
    plain = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-auto-plain-"));
});

afterAll(() => {
    loop?.destroy();
    if (plain) fs.rmSync(plain, { recursive: true, force: true });
});

describe("a root on Btrfs", () => {
    test("detect: a root that does not exist yet is judged by its nearest existing ancestor, and nothing is created", () => {
        const root = path.join(loop.mountPoint, "not", "yet", "mmagent");
        const r = runHostScript("storage", detectParams(auto(root)));
        expect(r.status).toBe(0);
        expect(r.json).toEqual({ requested: "auto", backend: "btrfs", root, fsType: "btrfs", probed: loop.mountPoint });
        expect(fs.existsSync(path.join(loop.mountPoint, "not"))).toBe(false);
    });

    test("ensure, snapshot and restore under auto do what the btrfs backend does", () => {
        const root = path.join(loop.mountPoint, "mmagent");
        const e = runHostScript("storage", ensureParams(auto(root), { name: "agent-db", profile: "db" }));
        expect(e.status).toBe(0);
        expect(e.json).toEqual({ volume: "agent-db", path: path.join(root, "agent-db"), backend: "btrfs" });
        expect(sh("btrfs", ["subvolume", "show", path.join(root, "agent-db")])).toContain("agent-db");
        expect(sh("lsattr", ["-d", path.join(root, "agent-db")]).split(" ")[0]).toContain("C");
        fs.writeFileSync(path.join(root, "agent-db", "data"), "v1");

        const s = runHostScript("storage", snapshotParams({ ...auto(root), keepSnapshots: 3 }, ["agent-db"], { container: "", image: "app:2" }, "mmagent-pre-0000aaaa"));
        expect(s.status).toBe(0);
        expect(s.json).toMatchObject({ snapshot: "mmagent-pre-0000aaaa", backend: "btrfs", volumes: { "agent-db": path.join(root, ".snapshots", "agent-db", "mmagent-pre-0000aaaa") } });
        expect(sh("btrfs", ["property", "get", path.join(root, ".snapshots", "agent-db", "mmagent-pre-0000aaaa"), "ro"]).trim()).toBe("ro=true");

        fs.writeFileSync(path.join(root, "agent-db", "data"), "v2");
        const r = runHostScript("storage", restoreParams(auto(root), ["agent-db"], { container: "", image: "", restoreFrom: "mmagent-pre-0000aaaa" }));
        expect(r.status).toBe(0);
        expect(r.json).toMatchObject({ restored: "mmagent-pre-0000aaaa", backend: "btrfs" });
        expect(fs.readFileSync(path.join(root, "agent-db", "data"), "utf8")).toBe("v1");
    });
});

describe("a root in a plain directory", () => {
    test("detect: dir, with the filesystem it found", () => {
        const root = path.join(plain, "mmagent");
        const fsType = sh("stat", ["-f", "-c", "%T", plain]).trim();
        expect(fsType).not.toBe("btrfs");
        const r = runHostScript("storage", detectParams(auto(root)));
        expect(r.status).toBe(0);
        expect(r.json).toEqual({ requested: "auto", backend: "dir", root, fsType, probed: plain });
        expect(r.stderr).toMatch(new RegExp(`backend auto: ${root} is dir`));
    });

    test("ensure makes directories; snapshot is a no-op reporting {snapshot: null} with a warning; restore is refused", () => {
        const root = path.join(plain, "mmagent");
        const e = runHostScript("storage", ensureParams(auto(root), { name: "agent-db", profile: "db" }));
        expect(e.json).toEqual({ volume: "agent-db", path: path.join(root, "agent-db"), backend: "dir" });
        expect(fs.statSync(path.join(root, "agent-db")).isDirectory()).toBe(true);

        const s = runHostScript("storage", snapshotParams({ ...auto(root), keepSnapshots: 3 }, ["agent-db"], { container: "", image: "app:2" }, "mmagent-pre-0000bbbb"));
        expect(s.status).toBe(0);
        expect(s.json).toEqual({ snapshot: null, backend: "dir", volumes: {} });
        expect(s.stderr).toMatch(/warning: storage backend auto resolved to dir on this host .*: no snapshot of agent-db is taken before this change/);
        expect(fs.readdirSync(root)).toEqual(["agent-db"]);

        const r = runHostScript("storage", restoreParams(auto(root), ["agent-db"], { container: "", image: "", restoreFrom: "mmagent-pre-0000bbbb" }));
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(/storage backend auto resolved to dir on this host .*nothing to restore: remove restoreFrom/);
        expect(r.stdout).toBe("");
    });

    test("an explicit dir backend still refuses a snapshot (no program declares one: a call is a bug, not a no-op)", () => {
        const snap = runHostScript("storage", snapshotParams({ backend: "dir", root: path.join(plain, "mmagent"), keepSnapshots: 3 }, ["agent-db"], { container: "", image: "x:1" }, "mmagent-pre-00000001"));
        expect(snap.status).not.toBe(0);
        expect(snap.stderr).toMatch(/the dir backend takes no snapshots/);
    });
});
