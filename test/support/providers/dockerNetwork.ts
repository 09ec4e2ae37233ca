/**
 * Fake of `docker:index/network:Network`: kreuzwerker/terraform-provider-docker v4.5.0. Every
 * argument is ForceNew (the resource has no Update); Read stores the IPAM config as the daemon
 * reports it, gateways included once the daemon has them (always after a restart).
 */
import { asSet, onlyKnownKeys, removeRetrying, Props, ResourceFake, Schema, schemaDiff } from "./fake";

const TFP = "kreuzwerker/terraform-provider-docker@v4.5.0:internal/provider";

const labelsObject = (labels: { label: string; value: string }[] | undefined): Record<string, string> =>
    Object.fromEntries((labels ?? []).map((l) => [l.label, l.value]));

/** flattenIpamConfigSpec: each field only when non-empty. */
const ipamEntry = (c: Props) =>
    Object.fromEntries(
        [
            ["subnet", c.subnet],
            ["ipRange", c.ipRange],
            ["gateway", c.gateway],
            ["auxAddress", c.auxAddress && Object.keys(c.auxAddress).length > 0 ? c.auxAddress : undefined],
        ].filter(([, v]) => v),
    );

export const NETWORK_SCHEMA: Schema = {
    name: { forceNew: true },
    labels: { forceNew: true, canonical: asSet },
    driver: { forceNew: true, computed: true },
    options: { forceNew: true, computed: true },
    internal: { forceNew: true, computed: true },
    attachable: { forceNew: true },
    ingress: { forceNew: true },
    ipv6: { forceNew: true },
    ipamDriver: { forceNew: true, default: "default" },
    ipamOptions: { forceNew: true },
    ipamConfigs: { forceNew: true, computed: true, canonical: (c: Props[]) => asSet(c.map(ipamEntry)) },
};

export const dockerNetwork: ResourceFake = {
    type: "docker:index/network:Network",
    mirrors: [`${TFP}/resource_docker_network.go (schema)`, `${TFP}/resource_docker_network_funcs.go (create, resourceDockerNetworkReadRefreshFunc, delete)`, `${TFP}/resource_docker_network_structures.go (flattenIpamConfigSpec)`],

    check(i) {
        onlyKnownKeys("Network", i, Object.keys(NETWORK_SCHEMA));
        ((i.ipamConfigs ?? []) as Props[]).forEach((c) => onlyKnownKeys("Network.ipamConfigs[]", c, ["subnet", "gateway", "ipRange", "auxAddress"]));
    },

    async create(ctx, i) {
        const net = await ctx.docker.createNetwork({
            Name: i.name,
            Driver: i.driver,
            Options: i.options,
            Internal: i.internal,
            Attachable: i.attachable,
            Ingress: i.ingress,
            // Sent only when true (d.GetOk); there is no EnableIPv4 in v4.5.0.
            ...(i.ipv6 ? { EnableIPv6: true } : {}),
            IPAM: {
                Driver: i.ipamDriver ?? "default",
                Options: i.ipamOptions,
                Config: ((i.ipamConfigs ?? []) as Props[]).map((c) => ({ Subnet: c.subnet, IPRange: c.ipRange, Gateway: c.gateway ?? "", AuxiliaryAddresses: c.auxAddress })),
            },
            Labels: labelsObject(i.labels),
            CheckDuplicate: true,
        } as any);
        return { id: net.id, state: { ...i } };
    },

    async read(ctx, id, state) {
        const n = await ctx.docker.getNetwork(id).inspect().catch((e: any) => (e?.statusCode === 404 ? undefined : Promise.reject(e)));
        if (!n) return undefined;
        return {
            ...state,
            name: n.Name,
            labels: Object.entries(n.Labels ?? {}).map(([label, value]) => ({ label, value })),
            driver: n.Driver,
            options: n.Options ?? {},
            internal: n.Internal,
            attachable: n.Attachable,
            ingress: n.Ingress,
            ipv6: n.EnableIPv6,
            ipamDriver: n.IPAM?.Driver,
            ipamOptions: n.IPAM?.Options ?? undefined,
            ipamConfigs: ((n.IPAM?.Config ?? []) as any[]).map((c) => ipamEntry({ subnet: c.Subnet, ipRange: c.IPRange, gateway: c.Gateway, auxAddress: c.AuxiliaryAddresses })),
        };
    },

    diff: (state, inputs) => schemaDiff(NETWORK_SCHEMA, state, inputs),

    async update() {
        throw new Error("docker_network has no Update: every argument is ForceNew");
    },

    /** Retries while the network "has active endpoints", for 30 s. */
    async delete(ctx, id) {
        await removeRetrying(() => ctx.docker.getNetwork(id).remove(), /has active endpoints/);
    },
};
