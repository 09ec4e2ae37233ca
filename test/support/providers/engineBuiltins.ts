/**
 * The two resources the Pulumi engine itself answers: the docker provider instance
 * (`pulumi:providers:docker`, its config) and `pulumi:pulumi:StackReference` (a read of a stack's
 * outputs from the backend's latest checkpoint: pulumi/pulumi pkg/resource/deploy/builtins.go,
 * readStackReference → backend GetStackOutputs).
 */
import { onlyKnownKeys, ResourceFake } from "./fake";

export const dockerProvider: ResourceFake = {
    type: "pulumi:providers:docker",
    mirrors: ["kreuzwerker/terraform-provider-docker@v4.5.0:internal/provider/provider.go (configure)", "kreuzwerker/terraform-provider-docker@v4.5.0:internal/provider/config.go (MakeClient)"],
    check(i) {
        onlyKnownKeys("docker Provider", i, ["host", "sshOpts", "version"]);
        if (i.host !== "unix:///var/run/docker.sock") throw new Error(`real-engine harness: docker provider host ${String(i.host)} not modelled (only the local socket)`);
        if (i.sshOpts !== undefined) throw new Error("real-engine harness: sshOpts not modelled for the local socket");
        if (process.env.DOCKER_CONTEXT) throw new Error("DOCKER_CONTEXT is set: the provider would use that context's host instead of `host`");
    },
    create: async (_ctx, i) => ({ id: "provider", state: { ...i } }),
    read: async (_ctx, _id, state) => state,
    diff: (state, inputs) => (JSON.stringify(state.host) === JSON.stringify(inputs.host) ? [] : [{ property: "host", kind: "update", old: state.host, new: inputs.host }]),
    update: async (_ctx, _id, _state, i) => ({ ...i }),
    async delete() {},
};

export const stackReference: ResourceFake = {
    type: "pulumi:pulumi:StackReference",
    mirrors: ["pulumi/pulumi:pkg/resource/deploy/builtins.go (readStackReference)"],
    check: (i) => onlyKnownKeys("StackReference", i, ["name", "outputs", "secretOutputNames"]),
    create: async (ctx, i) => ({ id: i.name, state: { name: i.name, outputs: ctx.lastOutputs, secretOutputNames: [] } }),
    read: async (ctx, _id, state) => ({ ...state, outputs: ctx.lastOutputs }),
    diff: () => [],
    update: async (ctx, _id, state) => ({ ...state, outputs: ctx.lastOutputs }),
    async delete() {},
};
