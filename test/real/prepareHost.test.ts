/**
 * NvidiaHost's prepare script, run for real with the parameters the component passes:
 * no-GPU mode against this machine's real Docker engine (files under a throwaway root), the
 * Docker-missing error inside a throwaway container, and the GPU branch (no GPU on these
 * machines) as exact commands against recording fakes.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderScriptStdin, RUN_STDIN_SCRIPT } from "../../components/hostScript";
import { prepareHostParams } from "../../components/nvidiaHost";
import { fakeCommands, requirePrerequisites, runHostScript, TEST_IMAGE } from "../support/host";

const work = fs.mkdtempSync(path.join(os.tmpdir(), "mmagent-prepare-"));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

beforeAll(() => requirePrerequisites({ docker: true, image: true, root: true }));

describe("no GPU, real Docker engine", () => {
    const hostRoot = path.join(work, "root");
    const params = { ...prepareHostParams({ gpus: "none" }), MMAGENT_HOST_ROOT: hostRoot };

    test("checks Docker, writes the sysctls, reports no GPUs; a second run changes nothing", () => {
        const first = runHostScript("prepare-host", params);
        expect({ status: first.status, stderr: first.stderr }).toEqual({ status: 0, stderr: expect.stringMatching(/Docker \S+ answers/) });
        expect(first.json).toMatchObject({ docker: expect.stringMatching(/^\d+\.\d+/), gpus: [], toolkitVersion: "", dockerRestarted: false });
        expect(first.json.changed).toContain("/etc/sysctl.d/90-mmagent.conf");
        expect(fs.readFileSync(path.join(hostRoot, "etc/sysctl.d/90-mmagent.conf"), "utf8")).toBe(
            "# Managed by mmagent (pulumi). Edit the stack's host.sysctls instead.\nfs.inotify.max_user_watches=524288\n",
        );
        expect(fs.readFileSync("/proc/sys/fs/inotify/max_user_watches", "utf8").trim()).toBe("524288");

        const second = runHostScript("prepare-host", params);
        expect(second.status).toBe(0);
        expect(second.json.changed).toEqual([]);
        expect(second.json.dockerRestarted).toBe(false);
    });

    test("Docker missing on the host: a clear error before anything else", () => {
        const r = spawnSync("docker", ["run", "--rm", "-i", "--name", `mmtest-prepare-nodocker-${process.pid}`, "--network", "none", TEST_IMAGE, "sh", "-c", RUN_STDIN_SCRIPT], {
            input: renderScriptStdin("prepare-host", prepareHostParams({ gpus: "none" })),
            encoding: "utf8",
        });
        expect(r.status).not.toBe(0);
        expect(r.stderr).toContain("Docker is not installed on this host: install it (Debian/Ubuntu: apt-get install docker.io), then run pulumi up again");
    });

    test("Docker installed but its daemon down: says so", () => {
        const bin = path.join(work, "nodaemon");
        fakeCommands(bin, path.join(work, "nodaemon.log"), { docker: "echo 'Cannot connect to the Docker daemon' >&2; exit 1" });
        const r = runHostScript("prepare-host", { ...params }, { ...process.env, PATH: `${bin}:${process.env.PATH}` });
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(/daemon does not answer: start it/);
    });
});

describe("GPU branch (no GPU on this machine: exact commands against recording fakes)", () => {
    const NVIDIA_SMI_OK = `
if [[ "$1" == "-L" ]]; then echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-11111111-2222-3333-4444-555555555555)"; exit 0; fi
exit 0`;
    const DOCKER = `
case "$1" in
  version) echo "27.5.1" ;;
  run) echo "0, GPU-11111111-2222-3333-4444-555555555555, NVIDIA H100 80GB HBM3, 81559, 580.95.05"
       echo "1, GPU-66666666-2222-3333-4444-555555555555, NVIDIA H100 80GB HBM3, 81559, 580.95.05" ;;
esac`;
    function setup(name: string, fakes: Record<string, string>) {
        const dir = path.join(work, name);
        const log = path.join(dir, "calls.log");
        const hostRoot = path.join(dir, "root");
        fakeCommands(path.join(dir, "bin"), log, {
            docker: DOCKER,
            "nvidia-smi": NVIDIA_SMI_OK,
            // Configuring the runtime changes daemon.json the first time only.
            "nvidia-ctk": `if [[ "$1 $2" == "runtime configure" ]]; then mkdir -p ${hostRoot}/etc/docker; grep -q nvidia ${hostRoot}/etc/docker/daemon.json 2>/dev/null || echo '{"runtimes":{"nvidia":{}}}' > ${hostRoot}/etc/docker/daemon.json; fi`,
            "apt-get": "",
            "apt-mark": "",
            "dpkg-query": `[[ -f ${dir}/installed ]] && printf '%s' 1.18.0-1; exit 0`,
            curl: "echo KEY",
            // Reads its stdin like the real gpg, so curl never dies of SIGPIPE under pipefail.
            gpg: `cat >/dev/null; out=""; while [[ $# -gt 0 ]]; do [[ "$1" == "-o" ]] && out="$2"; shift; done; echo key > "$out"`,
            systemctl: "",
            sysctl: `[[ "$1" == "-n" ]] && echo 524288; exit 0`,
            ...fakes,
        });
        const env = { ...process.env, PATH: `${path.join(dir, "bin")}:${process.env.PATH}` };
        const calls = () => {
            const lines = fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : [];
            fs.writeFileSync(log, "");
            return lines;
        };
        return { dir, hostRoot, env, calls };
    }

    test("installs the pinned toolkit, configures Docker, restarts it once, smoke-tests the listed GPUs", () => {
        const t = setup("gpu-ok", {});
        const params = { ...prepareHostParams({ gpus: [0, 1], toolkitVersion: "1.18.0-1" }), MMAGENT_HOST_ROOT: t.hostRoot };
        const r = runHostScript("prepare-host", params, t.env);
        expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
        const toolkit = ["nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools", "libnvidia-container1"];
        const calls = t.calls();
        // curl | gpg run concurrently: their log lines may come in either order.
        expect(calls).toContain("curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey");
        expect(calls.filter((l) => !/^(dpkg-query|sysctl|curl)/.test(l))).toEqual([
            "docker version -f \\{\\{.Server.Version\\}\\}",
            "nvidia-smi -L",
            `gpg --batch --yes --dearmor -o ${t.hostRoot}/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg`,
            "apt-get update -qq",
            `apt-mark unhold ${toolkit.join(" ")}`,
            `apt-get install -y -qq --allow-downgrades ${toolkit.map((p) => `${p}=1.18.0-1`).join(" ")}`,
            `apt-mark hold ${toolkit.join(" ")}`,
            "nvidia-ctk runtime configure --runtime=docker",
            "systemctl restart docker",
            "nvidia-ctk system create-dev-char-symlinks --create-all",
            "docker run --rm --gpus \\\"device=0\\,1\\\" nvidia/cuda:12.6.3-base-ubuntu24.04 nvidia-smi --query-gpu=index\\,uuid\\,name\\,memory.total\\,driver_version --format=csv\\,noheader\\,nounits",
        ]);
        expect(fs.readFileSync(path.join(t.hostRoot, "etc/apt/sources.list.d/nvidia-container-toolkit.list"), "utf8")).toBe(
            "deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /\n",
        );
        expect(fs.readFileSync(path.join(t.hostRoot, "etc/udev/rules.d/71-nvidia-dev-char.rules"), "utf8")).toContain("create-dev-char-symlinks --create-all");
        expect(r.json).toMatchObject({
            toolkitVersion: "1.18.0-1",
            dockerRestarted: true,
            gpus: [
                { index: 0, uuid: "GPU-11111111-2222-3333-4444-555555555555", name: "NVIDIA H100 80GB HBM3", memoryMiB: 81559, driverVersion: "580.95.05" },
                { index: 1, uuid: "GPU-66666666-2222-3333-4444-555555555555", name: "NVIDIA H100 80GB HBM3", memoryMiB: 81559, driverVersion: "580.95.05" },
            ],
        });

        // Second run with the toolkit installed and daemon.json unchanged: no install, no restart.
        fs.writeFileSync(path.join(t.dir, "installed"), "");
        const again = runHostScript("prepare-host", params, t.env);
        expect(again.status).toBe(0);
        expect(t.calls().filter((l) => /^(apt-get|apt-mark|systemctl|curl|gpg)/.test(l))).toEqual([]);
        expect(again.json.dockerRestarted).toBe(false);
        expect(again.json.changed).toEqual([]);
    });

    test("CDI mode generates the spec and asks for CDI devices", () => {
        const t = setup("gpu-cdi", {});
        fs.writeFileSync(path.join(t.dir, "installed"), "");
        const r = runHostScript("prepare-host", { ...prepareHostParams({ gpus: "all", cdi: true }), MMAGENT_HOST_ROOT: t.hostRoot }, t.env);
        expect(r.status).toBe(0);
        const calls = t.calls();
        expect(calls).toContain("nvidia-ctk runtime configure --runtime=docker --cdi.enabled");
        // Names by index and by UUID, so every GPU id the config accepts resolves as a CDI device.
        expect(calls).toContain("nvidia-ctk cdi generate --device-name-strategy=index --device-name-strategy=uuid --output=/etc/cdi/nvidia.yaml");
        expect(calls.find((l) => l.startsWith("docker run"))).toMatch(/^docker run --rm --device nvidia.com\/gpu=all /);
    });

    test.each([
        ["two indices, NVIDIA runtime", { gpus: [0, 1], smokeTestGpus: [0, 1] }, "--gpus \\\"device=0\\,1\\\""],
        ["the one GPU the containers get, not all the host has", { gpus: [0, 1], smokeTestGpus: [1] }, "--gpus \\\"device=1\\\""],
        ["two UUIDs by CDI name", { gpus: ["GPU-11111111-2222-3333-4444-555555555555", "GPU-66666666-2222-3333-4444-555555555555"], cdi: true }, "--device nvidia.com/gpu=GPU-11111111-2222-3333-4444-555555555555 --device nvidia.com/gpu=GPU-66666666-2222-3333-4444-555555555555"],
    ] as const)("the GPU smoke test selects exactly the containers' GPUs: %s", (_what, args, devices) => {
        const t = setup(`gpu-smoke-${devices.length}`, {});
        fs.writeFileSync(path.join(t.dir, "installed"), "");
        const r = runHostScript("prepare-host", { ...prepareHostParams(args as any), MMAGENT_HOST_ROOT: t.hostRoot }, t.env);
        expect(r.status).toBe(0);
        // The fake logs argv with printf %q: `\"device=0\,1\"` is the one argument "device=0,1" in quotes.
        const run = t.calls().find((l) => l.startsWith("docker run"))!;
        expect(run.slice(0, run.indexOf(" nvidia/cuda:"))).toBe(`docker run --rm ${devices}`);
    });

    test("nvidia-smi missing: stops early, says what to do, installs nothing", () => {
        const t = setup("gpu-nosmi", {});
        fs.rmSync(path.join(t.dir, "bin", "nvidia-smi"));
        // Hide any real nvidia-smi too.
        const env = { ...t.env, PATH: `${path.join(t.dir, "bin")}:/usr/bin:/bin` };
        const r = runHostScript("prepare-host", { ...prepareHostParams({ gpus: "all" }), MMAGENT_HOST_ROOT: t.hostRoot }, env);
        expect(r.status).not.toBe(0);
        expect(r.stderr).toContain("the NVIDIA driver is not installed (nvidia-smi not found): install the driver on the host, or set host.gpus to none");
        expect(t.calls().filter((l) => /^(apt-get|nvidia-ctk|systemctl)/.test(l))).toEqual([]);
    });

    test("nvidia-smi failing: stops early with its message", () => {
        const t = setup("gpu-smifail", { "nvidia-smi": "echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.'; exit 9" });
        const r = runHostScript("prepare-host", { ...prepareHostParams({ gpus: [0] }), MMAGENT_HOST_ROOT: t.hostRoot }, t.env);
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(/nvidia-smi failed, so the driver is not working: NVIDIA-SMI has failed .*fix the driver/);
        expect(t.calls().filter((l) => /^(apt-get|nvidia-ctk|systemctl)/.test(l))).toEqual([]);
    });
});
