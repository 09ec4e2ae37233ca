/**
 * How a service asks Docker for GPUs: structured device requests, never the `gpus` string.
 *
 * The docker provider's `gpus` input goes through docker/cli's `--gpus` parser after its quotes
 * are stripped, so `device=0,1` reads as device 0 plus a count of 1 and the daemon refuses to
 * start the container (docs/provider-behaviour.md, "GPUs"). A device request names the driver and
 * the exact devices, and the provider passes it to the Engine API as it is.
 */
import type * as docker from "@pulumi/docker";
import type { ServiceRole } from "./config";
import { GpuSelection } from "./types";

export type DeviceRequest = docker.types.input.ContainerDeviceRequest;

/** GPUs a service gets: none, every GPU the runtime sees, or exact indices/UUIDs. */
export type ServiceGpus = "none" | "all" | (number | string)[];

/** The CDI vendor/class prefix `nvidia-ctk cdi generate` writes (e.g. `nvidia.com/gpu=0`). */
export const CDI_GPU_KIND = "nvidia.com/gpu";

/**
 * What a service gets from what it asks for and what the host offers. A service that asks for
 * nothing gets every host GPU when it is inference, none otherwise; "all" on a host that lists
 * its GPUs means exactly those.
 */
export function serviceGpus(role: ServiceRole, requested: GpuSelection | undefined, host: GpuSelection): ServiceGpus {
    if (host === "none") return "none";
    const wanted = requested ?? (role === "inference" ? "all" : "none");
    if (wanted === "none") return "none";
    return wanted === "all" ? host : wanted;
}

/**
 * Device requests for a GPU selection: the NVIDIA runtime's (`driver: nvidia`, capability `gpu`,
 * count -1 for all or the exact IDs), or CDI device names when the host has CDI on.
 */
export function gpuDeviceRequests(gpus: ServiceGpus, cdi: boolean): DeviceRequest[] | undefined {
    if (gpus === "none") return undefined;
    const ids = gpus === "all" ? undefined : gpus.map(String);
    if (cdi) return [{ driver: "cdi", deviceIds: (ids ?? ["all"]).map((id) => `${CDI_GPU_KIND}=${id}`) }];
    return [ids ? { driver: "nvidia", deviceIds: ids, capabilities: ["gpu"] } : { driver: "nvidia", count: -1, capabilities: ["gpu"] }];
}

/** The GPUs every container together gets: what the host's smoke test must select. */
export function unionGpus(selections: ServiceGpus[]): ServiceGpus {
    if (selections.includes("all")) return "all";
    const ids = selections.flatMap((s) => (Array.isArray(s) ? s : []));
    const seen = new Set<string>();
    const out = ids.filter((id) => !seen.has(String(id)) && seen.add(String(id)));
    return out.length > 0 ? out : "none";
}
