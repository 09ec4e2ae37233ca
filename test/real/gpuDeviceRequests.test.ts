/**
 * GPU requests on the real engine: the program's device requests for one index, two indices, two
 * UUIDs, all, and CDI names, sent the way the docker provider sends them (its create request,
 * test/support/providers/dockerContainer.ts), and read back from the engine exactly. Containers
 * are created, not started: there is no NVIDIA runtime on this machine (no GPU here), and the
 * daemon checks device requests only at start.
 */
import Docker from "dockerode";
import { gpuDeviceRequests, ServiceGpus } from "../../components/gpus";
import { requirePrerequisites, TEST_IMAGE } from "../support/host";
import { containerCreateRequest, flattenDeviceRequests } from "../support/providers/dockerContainer";
import { schemaDiff } from "../support/providers/fake";
import { CONTAINER_SCHEMA } from "../support/providers/dockerContainer";

const docker = new Docker();
const PREFIX = "mmtest-gpu-";
const UUIDS = ["GPU-11111111-2222-3333-4444-555555555555", "GPU-66666666-2222-3333-4444-555555555555"];

async function removeOurs(): Promise<void> {
    for (const c of await docker.listContainers({ all: true, filters: { name: [PREFIX] } })) await docker.getContainer(c.Id).remove({ force: true });
}

beforeAll(async () => {
    requirePrerequisites({ docker: true, image: true });
    await removeOurs();
});
afterAll(removeOurs);

test.each<[string, ServiceGpus, boolean, Docker.DeviceRequest[]]>([
    ["one index", [0], false, [{ Driver: "nvidia", Count: 0, DeviceIDs: ["0"], Capabilities: [["gpu"]], Options: {} }]],
    ["two indices", [0, 1], false, [{ Driver: "nvidia", Count: 0, DeviceIDs: ["0", "1"], Capabilities: [["gpu"]], Options: {} }]],
    ["two UUIDs", UUIDS, false, [{ Driver: "nvidia", Count: 0, DeviceIDs: UUIDS, Capabilities: [["gpu"]], Options: {} }]],
    ["all", "all", false, [{ Driver: "nvidia", Count: -1, DeviceIDs: [], Capabilities: [["gpu"]], Options: {} }]],
    ["two indices by CDI name", [0, 1], true, [{ Driver: "cdi", Count: 0, DeviceIDs: ["nvidia.com/gpu=0", "nvidia.com/gpu=1"], Capabilities: [[]], Options: {} }]],
    ["all by CDI name", "all", true, [{ Driver: "cdi", Count: 0, DeviceIDs: ["nvidia.com/gpu=all"], Capabilities: [[]], Options: {} }]],
])("%s: the engine holds exactly the requested devices, and the provider's read-back has no diff", async (what, gpus, cdi, expected) => {
    const declared = gpuDeviceRequests(gpus, cdi);
    const { create } = containerCreateRequest({ name: `${PREFIX}${what.replace(/\W+/g, "-")}`, image: TEST_IMAGE, command: ["true"], deviceRequests: declared });
    const container = await docker.createContainer(create);
    const info = await container.inspect();
    // Count 0 with device IDs: the daemon's NVIDIA driver refuses a request with both (devices_nvidia_linux.go).
    expect(info.HostConfig.DeviceRequests).toEqual(expected);
    expect(schemaDiff(CONTAINER_SCHEMA, { deviceRequests: flattenDeviceRequests(info.HostConfig.DeviceRequests) }, { deviceRequests: declared })).toEqual([]);
    await container.remove({ force: true });
});
