/**
 * Cold start of the dev stack to all-healthy, in one run, alternating rounds:
 *   - harness: the real program applied by test/support/realEngineHarness.ts — what `pulumi up`
 *     does on a fresh host: prepare-host, a Btrfs subvolume per volume, pre-change snapshots,
 *     then the containers in dependency order, each waited for until healthy;
 *   - compose: `docker compose up -d --wait` on an equivalent compose file generated from the
 *     same container inputs (same images, commands, env, healthchecks, mounts, ports, limits,
 *     config files, depends_on: service_healthy), with plain bind directories for storage.
 * Images exist beforehand in both (no registry here). Run with `npm run bench:cold-start`.
 */
import { spawnSync } from "child_process";
import Docker from "dockerode";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { reveal } from "../test/support/secrets";
import { buildE2eImages, E2E_PREFIX, e2eStackConfig } from "../test/support/e2eStack";
import { BtrfsLoop, requirePrerequisites } from "../test/support/host";
import { RealEngineHarness } from "../test/support/realEngineHarness";

jest.setTimeout(3_600_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const COMPOSE = process.env.COMPOSE_BIN ?? "";
const PROJECT = "mmbench";
const docker = new Docker();
const out = (line: string) => process.stdout.write(`${line}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// Compose interpolates `$`: keep every value literal.
const literal = (v: unknown): any =>
    typeof v === "string" ? v.replace(/\$/g, "$$$$") : Array.isArray(v) ? v.map(literal) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, literal(x)])) : v;

/** A compose file with the containers the harness applied, storage as plain bind directories. */
function composeFromHarness(h: RealEngineHarness, storageDir: string): string {
    const containers = h.entries("docker:index/container:Container");
    const byUrn = new Map(containers.map((c) => [c.urn, reveal(c.inputs).name as string]));
    const services: Record<string, any> = {};
    const configs: Record<string, any> = {};
    let networkName = "";
    for (const c of containers) {
        const i = reveal<Record<string, any>>(c.inputs);
        const net = i.networksAdvanced[0];
        networkName = net.name;
        const hc = i.healthcheck;
        const uploads: { file: string; content: string }[] = i.uploads ?? [];
        uploads.forEach((u, k) => (configs[`${i.name}-${k}`] = { content: u.content }));
        services[i.name] = {
            container_name: i.name,
            image: i.image,
            ...(i.command ? { command: i.command } : {}),
            environment: i.envs ?? [],
            restart: i.restart,
            networks: { [net.name]: { aliases: net.aliases } },
            volumes: (i.mounts ?? []).map((m: any) => ({ type: "volume", source: m.source, target: m.target, read_only: m.readOnly })),
            ...(i.ports ? { ports: i.ports.map((p: any) => `${p.ip}:${p.external}:${p.internal}/${p.protocol}`) } : {}),
            healthcheck: { test: hc.tests, interval: hc.interval, timeout: hc.timeout, start_period: hc.startPeriod, retries: hc.retries },
            cap_drop: i.capabilities.drops,
            ...(i.capabilities.adds ? { cap_add: i.capabilities.adds } : {}),
            security_opt: i.securityOpts,
            privileged: false,
            ...(i.cpuSet ? { cpuset: i.cpuSet } : {}),
            ...(i.memory ? { mem_limit: `${i.memory}m` } : {}),
            ...(i.memorySwap ? { memswap_limit: `${i.memorySwap}m` } : {}),
            ...(i.init ? { init: true } : {}),
            ...(i.destroyGraceSeconds ? { stop_grace_period: `${i.destroyGraceSeconds}s` } : {}),
            ...(i.shmSize ? { shm_size: `${i.shmSize}m` } : {}),
            logging: { driver: i.logDriver, options: i.logOpts },
            labels: Object.fromEntries(i.labels.map((l: any) => [l.label, l.value])),
            ...(uploads.length ? { configs: uploads.map((u, k) => ({ source: `${i.name}-${k}`, target: u.file })) } : {}),
            depends_on: Object.fromEntries(c.dependsOn.filter((u) => byUrn.has(u)).map((u) => [byUrn.get(u)!, { condition: "service_healthy" }])),
        };
    }
    const volumes: Record<string, any> = {};
    for (const v of h.entries("docker:index/volume:Volume")) {
        const i = reveal<Record<string, any>>(v.inputs);
        const dir = path.join(storageDir, i.name);
        fs.mkdirSync(dir, { recursive: true });
        volumes[i.name] = { name: i.name, driver: "local", driver_opts: { type: "none", o: "bind", device: dir } };
    }
    const net = reveal<Record<string, any>>(h.entries("docker:index/network:Network")[0].inputs);
    const networks = { [networkName]: { name: net.name, driver: "bridge", enable_ipv6: true, ipam: { config: net.ipamConfigs.map((c: any) => ({ subnet: c.subnet })) } } };
    return YAML.stringify(literal({ name: PROJECT, services, networks, volumes, configs }));
}

test("cold start to all-healthy: harness (pulumi up's graph) vs docker compose up -d --wait", async () => {
    requirePrerequisites({ commands: ["btrfs"], docker: true, image: true, root: true });
    if (!COMPOSE) throw new Error("COMPOSE_BIN is not set: run through bench/cold-start.sh");
    await buildE2eImages(docker);
    const loop = new BtrfsLoop(2048).create();
    const results = { harness: [] as number[], compose: [] as number[] };
    try {
        for (let round = 1; round <= ROUNDS; round++) {
            const h = new RealEngineHarness(docker);
            const root = path.join(loop.mountPoint, `harness-${round}`);
            fs.mkdirSync(root);
            const applied = await h.apply({ stack: "e2e", config: e2eStackConfig({ storageRoot: root }) });
            results.harness.push(applied.durationMs);
            const composeFile = path.join(loop.dir, `compose-${round}.yaml`);
            fs.writeFileSync(composeFile, composeFromHarness(h, path.join(loop.mountPoint, `compose-${round}`)));
            await h.destroy();

            const t0 = Date.now();
            const up = spawnSync(COMPOSE, ["-f", composeFile, "up", "-d", "--wait"], { encoding: "utf8" });
            const composeMs = Date.now() - t0;
            const down = spawnSync(COMPOSE, ["-f", composeFile, "down", "-v", "--remove-orphans"], { encoding: "utf8" });
            if (up.status !== 0) throw new Error(`compose up failed: ${up.stderr.slice(-2000)}`);
            if (down.status !== 0) throw new Error(`compose down failed: ${down.stderr.slice(-1000)}`);
            results.compose.push(composeMs);
            out(`round ${round}: harness ${(applied.durationMs / 1000).toFixed(1)} s (${applied.operations.length} resources), compose ${(composeMs / 1000).toFixed(1)} s`);
        }
    } finally {
        loop.destroy();
    }
    const h = median(results.harness);
    const c = median(results.compose);
    out("");
    out(`cold start to all-healthy, dev stack (${E2E_PREFIX}: proxy, inference, agent, cache), median of ${ROUNDS} rounds`);
    out(`  harness (pulumi up's graph):        ${(h / 1000).toFixed(1)} s   [${results.harness.map((x) => (x / 1000).toFixed(1)).join(", ")}]`);
    out(`  docker compose up -d --wait:        ${(c / 1000).toFixed(1)} s   [${results.compose.map((x) => (x / 1000).toFixed(1)).join(", ")}]`);
    out(`  ratio harness / compose:            ${(h / c).toFixed(2)}`);
});
