/**
 * The real-engine harness's translation of docker provider inputs to Docker API requests: every
 * input the dev and prod stacks declare is translated, and an unknown one is an error.
 */
import { containerPlan, durationNs, localCommandPlan, networkCreate, volumeCreate } from "../support/dockerTranslate";
import { runProgram } from "../support/mockProgram";

test("every Container, Network, Volume and Command input of the prod stack is translated", async () => {
    const { run } = await runProgram({
        stack: "prod",
        config: { "mmagent:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nunit\n-----END OPENSSH PRIVATE KEY-----" },
        secretKeys: ["mmagent:sshPrivateKey"],
    });
    const containers = run.byType("docker:index/container:Container");
    expect(containers.length).toBe(5);
    for (const c of containers) {
        const plan = containerPlan(c.inputs);
        expect(plan.create.HostConfig).toMatchObject({ CapDrop: ["ALL"], SecurityOpt: ["no-new-privileges:true"], Privileged: false });
        expect(plan.waitSeconds).toBe(180);
    }
    const inference = containerPlan(run.one("docker:index/container:Container", "prod-agents-inference").inputs);
    expect(inference.create.HostConfig!.DeviceRequests).toEqual([{ Driver: "nvidia", Capabilities: [["gpu"]], DeviceIDs: ["0", "1"] }]);
    expect(inference.create.HostConfig!.Memory).toBe(run.one("docker:index/container:Container", "prod-agents-inference").inputs.memory * 1024 * 1024);
    const cache = containerPlan(run.one("docker:index/container:Container", "prod-agents-cache").inputs);
    expect(cache.uploads.map((u) => u.file)).toEqual(["/etc/mmagent/redis.conf"]);
    expect(cache.create.Healthcheck).toMatchObject({ Interval: 10e9, Timeout: 5e9, StartPeriod: 30e9, Retries: 3 });
    for (const n of run.byType("docker:index/network:Network")) expect(networkCreate(n.inputs)).toMatchObject({ EnableIPv6: true });
    for (const v of run.byType("docker:index/volume:Volume")) expect(volumeCreate(v.inputs)).toMatchObject({ Driver: "local", DriverOpts: { type: "none", o: "bind" } });
    // Prod runs its commands over SSH: the harness translates local ones only, so check the dev shape here.
    expect(localCommandPlan({ create: "true", stdin: "x", interpreter: ["/bin/sh", "-c"], addPreviousOutputInEnv: false }).create).toBe("true");
});

test.each([
    ["Container", () => containerPlan({ name: "a", image: "b:1", devices: [{ hostPath: "/dev/fuse" }] }), '"devices"'],
    ["Container.mounts[]", () => containerPlan({ name: "a", image: "b:1", mounts: [{ type: "volume", source: "v", target: "/x", bindOptions: {} }] }), '"bindOptions"'],
    ["Container.mounts type", () => containerPlan({ name: "a", image: "b:1", mounts: [{ type: "bind", source: "/var/run/docker.sock", target: "/s" }] }), 'mount type "bind"'],
    ["Container.healthcheck", () => containerPlan({ name: "a", image: "b:1", healthcheck: { tests: ["NONE"], startInterval: "1s" } }), '"startInterval"'],
    ["Network", () => networkCreate({ name: "n", internal: true }), '"internal"'],
    ["Volume", () => volumeCreate({ name: "v", driverOpts: {}, extra: 1 }), '"extra"'],
    ["Command", () => localCommandPlan({ create: "true", delete: "rm -rf /" }), '"delete"'],
])("an input the harness does not translate is an error: %s", (_what, call, names) => {
    expect(call).toThrow(names);
    expect(call).toThrow(/not translated/);
});

test("durations read like Go's", () => {
    expect(durationNs("10s")).toBe(10e9);
    expect(durationNs("1m30s")).toBe(90e9);
    expect(durationNs("250ms")).toBe(250e6);
    expect(() => durationNs("10 seconds")).toThrow('cannot read duration "10 seconds"');
});
