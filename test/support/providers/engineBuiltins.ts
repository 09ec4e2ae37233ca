/**
 * A resource the Pulumi engine itself answers: `pulumi:pulumi:StackReference` (a read of a stack's
 * outputs from the backend's latest checkpoint: pulumi/pulumi pkg/resource/deploy/builtins.go,
 * readStackReference → backend GetStackOutputs).
 */
import { onlyKnownKeys, ResourceFake } from "./fake";

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
