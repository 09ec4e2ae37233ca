/**
 * Fake of `docker:index/volume:Volume`: kreuzwerker/terraform-provider-docker v4.5.0. Every
 * argument is ForceNew; Read stores name, driver, options and labels as Docker reports them. A
 * create with an existing name returns the existing volume with its old options (Docker's rule),
 * and the delete retries "volume is in use" for 30 s.
 */
import { asSet, onlyKnownKeys, removeRetrying, ResourceFake, Schema, schemaDiff } from "./fake";

const TFP = "kreuzwerker/terraform-provider-docker@v4.5.0:internal/provider";

export const VOLUME_SCHEMA: Schema = {
    name: { forceNew: true, computed: true },
    driver: { forceNew: true, computed: true },
    driverOpts: { forceNew: true },
    labels: { forceNew: true, canonical: asSet },
};

export const dockerVolume: ResourceFake = {
    type: "docker:index/volume:Volume",
    mirrors: [`${TFP}/resource_docker_volume.go (schema, resourceDockerVolumeCreate, Read, Delete)`],

    check: (i) => onlyKnownKeys("Volume", i, Object.keys(VOLUME_SCHEMA)),

    async create(ctx, i) {
        const labels = Object.fromEntries(((i.labels ?? []) as { label: string; value: string }[]).map((l) => [l.label, l.value]));
        const v = await ctx.docker.createVolume({ Name: i.name, Driver: i.driver ?? "local", DriverOpts: i.driverOpts ?? {}, Labels: labels });
        return { id: (v as any).Name ?? i.name, state: { ...i } };
    },

    async read(ctx, id, state) {
        const v = await ctx.docker.getVolume(id).inspect().catch((e: any) => (e?.statusCode === 404 ? undefined : Promise.reject(e)));
        if (!v) return undefined;
        return {
            ...state,
            name: v.Name,
            driver: v.Driver,
            driverOpts: v.Options ?? {},
            labels: Object.entries(v.Labels ?? {}).map(([label, value]) => ({ label, value })),
            mountpoint: v.Mountpoint,
        };
    },

    diff: (state, inputs) => schemaDiff(VOLUME_SCHEMA, state, inputs),

    async update() {
        throw new Error("docker_volume has no Update for these arguments: every one is ForceNew");
    },

    async delete(ctx, id) {
        await removeRetrying(() => ctx.docker.getVolume(id).remove({ force: true }), /volume is in use/);
    },
};
