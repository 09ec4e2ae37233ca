/**
 * The ZFS path of the storage script. This kernel has no ZFS module, so a recording fake `zfs`
 * (with just enough state to answer `list`/`get`) stands in, and the tests check the exact
 * commands and properties the real script issues.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { detectParams, ensureParams, restoreParams, snapshotParams } from "../../components/storageLayout";
import { fakeCommands, runHostScript } from "../support/host";

const work = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-zfs-"));
const bin = path.join(work, "bin");
const log = path.join(work, "calls.log");
const state = path.join(work, "state");
const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
const args = { backend: "zfs" as const, root: "tank/mmagent" };

// A fake zfs: datasets and snapshots are lines in $state, in creation order.
const FAKE_ZFS = `
state=${JSON.stringify(state)}; touch "$state"
last="\${@: -1}"
case "$1" in
  list)
    if [[ " $* " == *" -d 1 "* ]]; then grep "^$last@" "$state" || true; exit 0; fi
    grep -qx -- "$last" "$state"; exit $? ;;
  create) echo "$last" >>"$state" ;;
  snapshot) echo "$last" >>"$state" ;;
  destroy) grep -vx -- "$last" "$state" >"$state.new" || true; mv "$state.new" "$state" ;;
  get)
    case "$*" in
      *"-o value mountpoint"*) echo "/$last" ;;
      *"-o property,value mmagent:"*)
        printf 'mmagent:created\t2026-11-23T12:00:00.000Z\nmmagent:image\tapp:1\nmmagent:next-image\tapp:2\n'
        printf 'mmagent:image-id\tsha256:%064d\nmmagent:image-digest\tregistry.example/app@sha256:%064d\nmmagent:bytes\t4096\n' 1 2 ;;
      *"-Hp -o value used"*) echo 8192 ;;
      *"-Hp -o value quota"*) echo 21474836480 ;;
      *"-o value mmagent:restored-from"*) echo "mmagent-pre-00000002" ;;
      *"-s local all"*) printf 'recordsize\\t16K\\ncompression\\tlz4\\n' ;;
    esac ;;
esac
exit 0`;

beforeAll(() => {
    fakeCommands(bin, log, { zfs: FAKE_ZFS });
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function calls(): string[] {
    const lines = fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : [];
    fs.writeFileSync(log, "");
    return lines.filter((l) => l.length > 0);
}

test("ZFS (no kernel module here, exact commands): ensure creates the dataset with the db profile, then only re-asserts", () => {
    const first = runHostScript("storage", ensureParams(args, { name: "agent-db", profile: "db", quotaGiB: 20 }), env);
    expect(first.stderr).toMatch(/creating dataset tank\/mmagent\/agent-db/);
    expect(first.json).toEqual({ volume: "agent-db", path: "/tank/mmagent/agent-db", backend: "zfs" });
    expect(calls()).toEqual([
        "zfs list -H -o name tank/mmagent/agent-db",
        "zfs create -p -o recordsize=16K -o compression=lz4 -o atime=off -o logbias=latency -o quota=20G tank/mmagent/agent-db",
        "zfs set recordsize=16K compression=lz4 atime=off logbias=latency quota=20G tank/mmagent/agent-db",
        "zfs get -H -o value mountpoint tank/mmagent/agent-db",
    ]);
    const second = runHostScript("storage", ensureParams(args, { name: "agent-db", profile: "db", quotaGiB: 20 }), env);
    expect(second.stdout).toBe(first.stdout);
    expect(calls()).toEqual([
        "zfs list -H -o name tank/mmagent/agent-db",
        "zfs set recordsize=16K compression=lz4 atime=off logbias=latency quota=20G tank/mmagent/agent-db",
        "zfs get -H -o value mountpoint tank/mmagent/agent-db",
    ]);
});

test("ZFS (exact commands): model weights get 1M records", () => {
    runHostScript("storage", ensureParams(args, { name: "inference-models", profile: "models" }), env);
    expect(calls()).toContain("zfs create -p -o recordsize=1M -o compression=lz4 -o atime=off tank/mmagent/inference-models");
});

test("ZFS (exact commands): pre-change snapshot with metadata properties; retention destroys only the oldest own snapshots", () => {
    fs.appendFileSync(state, ["tank/mmagent/agent-db@autosnap_2026-11-01_daily", "tank/mmagent/agent-db@mmagent-pre-00000001", "tank/mmagent/agent-db@mmagent-pre-00000002"].join("\n") + "\n");
    const r = runHostScript("storage", snapshotParams({ ...args, keepSnapshots: 2 }, ["agent-db"], { container: "", image: "app:2" }, "mmagent-pre-00000003"), env);
    expect(r.status).toBe(0);
    // The report is read back from the snapshot's properties (the fake answers app:1 and a digest).
    expect(r.json).toMatchObject({
        snapshot: "mmagent-pre-00000003",
        image: "app:1",
        imageId: `sha256:${"0".repeat(63)}1`,
        imageDigest: `registry.example/app@sha256:${"0".repeat(63)}2`,
        nextImage: "app:2",
        volumes: { "agent-db": "tank/mmagent/agent-db@mmagent-pre-00000003" },
        bytes: { "agent-db": 4096 },
    });
    const c = calls();
    // The volume's used bytes are read before the snapshot and recorded with it; no container ran, so no image.
    expect(c).toContain("zfs get -Hp -o value used tank/mmagent/agent-db");
    expect(c.filter((l) => /^zfs (snapshot|destroy)/.test(l))).toEqual([
        expect.stringMatching(
            /^zfs snapshot -o mmagent:created=\S+ -o mmagent:image=- -o mmagent:next-image=app:2 -o mmagent:image-id=- -o mmagent:image-digest=- -o mmagent:bytes=8192 tank\/mmagent\/agent-db@mmagent-pre-00000003$/,
        ),
        "zfs destroy tank/mmagent/agent-db@mmagent-pre-00000001",
    ]);
    expect(c).toContain("zfs list -H -o name -t snapshot -s createtxg -d 1 tank/mmagent/agent-db");
    expect(fs.readFileSync(state, "utf8")).toContain("@autosnap_2026-11-01_daily");
});

test("ZFS (exact commands): restore keeps the current state, clones the snapshot into place, promotes, re-applies tuning", () => {
    const r = runHostScript("storage", restoreParams(args, ["agent-db"], { container: "", image: "app:1", restoreFrom: "mmagent-pre-00000002" }), env);
    expect(r.status).toBe(0);
    const aside = r.json.replacedBy as string;
    const stamp = aside.replace("mmagent-replaced-", "");
    const c = calls().filter((l) => !l.startsWith("zfs list") && !l.startsWith("zfs get -H -o property\\,value mmagent:") && !l.startsWith("zfs get -Hp -o value"));
    expect(c).toEqual([
        expect.stringMatching(
            new RegExp(`^zfs snapshot -o mmagent:created=\\S+ -o mmagent:image=- -o mmagent:image-id=- -o mmagent:image-digest=- -o mmagent:bytes=8192 tank/mmagent/agent-db@${aside}$`),
        ),
        "zfs create -p tank/mmagent/mmagent-replaced",
        `zfs rename tank/mmagent/agent-db tank/mmagent/mmagent-replaced/agent-db-${stamp}`,
        `zfs clone tank/mmagent/mmagent-replaced/agent-db-${stamp}@mmagent-pre-00000002 tank/mmagent/agent-db`,
        "zfs promote tank/mmagent/agent-db",
        `zfs get -H -o property\\,value -s local all tank/mmagent/mmagent-replaced/agent-db-${stamp}`,
        "zfs set recordsize=16K tank/mmagent/agent-db",
        "zfs set compression=lz4 tank/mmagent/agent-db",
        "zfs set mmagent:restored-from=mmagent-pre-00000002 tank/mmagent/agent-db",
    ]);
});

test("ZFS (exact commands): a restore configured with the snapshot's recorded registry digest is accepted", () => {
    const digest = `registry.example/app@sha256:${"0".repeat(63)}2`;
    const r = runHostScript("storage", restoreParams(args, ["agent-db"], { container: "", image: digest, restoreFrom: "mmagent-pre-00000002" }), env);
    expect(r.status).toBe(0);
    expect(r.stderr).not.toMatch(/warning/);
    // With the tag too: the digest decides.
    const tagged = runHostScript("storage", restoreParams(args, ["agent-db"], { container: "", image: `registry.example/app:1.2@sha256:${"0".repeat(63)}2`, restoreFrom: "mmagent-pre-00000002" }), env);
    expect(tagged.status).toBe(0);
    calls();
});

test("ZFS (exact commands): list is read-only: used and quota bytes, the snapshots with their properties, the restore it came from", () => {
    const r = runHostScript("storage", { MMAGENT_ACTION: "list", MMAGENT_BACKEND: "zfs", MMAGENT_ROOT: "tank/mmagent", MMAGENT_VOLUMES: "agent-db" }, env);
    expect(r.status).toBe(0);
    const vol = r.json.volumes["agent-db"];
    expect(vol).toMatchObject({ path: "/tank/mmagent/agent-db", exists: true, usedBytes: 8192, quotaBytes: 21474836480, restoredFrom: "mmagent-pre-00000002" });
    expect(vol.snapshots.map((s: { name: string }) => s.name)).toEqual(expect.arrayContaining(["mmagent-pre-00000002", "mmagent-pre-00000003"]));
    expect(vol.snapshots.map((s: { name: string }) => s.name)).not.toContain("autosnap_2026-11-01_daily");
    expect(vol.snapshots[0]).toMatchObject({ image: "app:1", imageDigest: `registry.example/app@sha256:${"0".repeat(63)}2`, bytes: 4096 });
    const c = calls();
    expect(c.filter((l) => !/^zfs (list|get) /.test(l))).toEqual([]);
    // (The fake logs its argv with printf %q, which escapes the commas.)
    expect(c).toContain(
        "zfs get -H -o property\\,value mmagent:created\\,mmagent:image\\,mmagent:next-image\\,mmagent:image-id\\,mmagent:image-digest\\,mmagent:bytes tank/mmagent/agent-db@mmagent-pre-00000003",
    );
});

test("ZFS (exact commands): a restore expecting another image stops before touching anything", () => {
    const r = runHostScript("storage", restoreParams(args, ["agent-db"], { container: "", image: "app:9", restoreFrom: "mmagent-pre-00000002" }), env);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(
        `holds data of image app:1 (registry.example/app@sha256:${"0".repeat(63)}2), but the service is configured with app:9: set the service's image to registry.example/app@sha256:${"0".repeat(63)}2`,
    );
    expect(calls().filter((l) => /^zfs (snapshot|rename|clone|promote|destroy)/.test(l))).toEqual([]);
});

describe("storage.backend auto with a dataset name (exact commands)", () => {
    const auto = { backend: "auto" as const, root: "tank/mmagent" };

    test("no pool of that name: refused, naming the pool, before anything is created", () => {
        const r = runHostScript("storage", detectParams(auto), env);
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(/storage.root 'tank\/mmagent' names a ZFS dataset \(backend auto\), but this host has no pool 'tank'/);
        expect(calls()).toEqual(["zfs list -H -o name tank"]);
    });

    test("no zfs command: refused, saying what to install", () => {
        // Only the shell's own tools on PATH: no zfs anywhere.
        const noZfs = { ...process.env, PATH: "/usr/bin:/bin" };
        const r = runHostScript("storage", detectParams({ backend: "auto", root: "nosuchpool-mmtest/x" }), noZfs);
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(/this host has no zfs command: install zfsutils-linux, or give an absolute path/);
    });

    test("detect: the pool is there, so ZFS; one read-only zfs call", () => {
        fs.appendFileSync(state, "tank\n");
        const r = runHostScript("storage", detectParams(auto), env);
        expect(r.status).toBe(0);
        expect(r.json).toEqual({ requested: "auto", backend: "zfs", root: "tank/mmagent", fsType: "zfs", probed: "tank" });
        expect(r.stderr).toMatch(/backend auto: tank\/mmagent is zfs/);
        expect(calls()).toEqual(["zfs list -H -o name tank"]);
    });

    test("ensure and snapshot under auto issue the zfs backend's exact commands after the same check", () => {
        const e = runHostScript("storage", ensureParams(auto, { name: "cache-data", profile: "cache" }), env);
        expect(e.json).toEqual({ volume: "cache-data", path: "/tank/mmagent/cache-data", backend: "zfs" });
        expect(calls()).toEqual([
            "zfs list -H -o name tank",
            "zfs list -H -o name tank/mmagent/cache-data",
            "zfs create -p -o recordsize=128K -o compression=lz4 -o atime=off tank/mmagent/cache-data",
            "zfs set recordsize=128K compression=lz4 atime=off tank/mmagent/cache-data",
            "zfs get -H -o value mountpoint tank/mmagent/cache-data",
        ]);
        const s = runHostScript("storage", snapshotParams({ ...auto, keepSnapshots: 2 }, ["cache-data"], { container: "", image: "redis:2" }, "mmagent-pre-0000000a"), env);
        expect(s.status).toBe(0);
        expect(s.json).toMatchObject({ snapshot: "mmagent-pre-0000000a", backend: "zfs", volumes: { "cache-data": "tank/mmagent/cache-data@mmagent-pre-0000000a" } });
        expect(calls().filter((l) => /^zfs (snapshot|destroy)/.test(l))).toEqual([
            expect.stringMatching(
                /^zfs snapshot -o mmagent:created=\S+ -o mmagent:image=- -o mmagent:next-image=redis:2 -o mmagent:image-id=- -o mmagent:image-digest=- -o mmagent:bytes=8192 tank\/mmagent\/cache-data@mmagent-pre-0000000a$/,
            ),
        ]);
    });
});
