/**
 * The lifecycle both Command fakes share, as pulumi-command v1.2.1 implements it for local and
 * remote alike (`{local,remote}/commandController.go` on pulumi-go-provider's `infer`): create runs
 * `create` (nothing when unset); Read changes nothing; the diff follows the schema (`triggers`
 * replaces); an update runs `update`, or `create` without one; delete runs `delete` only when
 * set, with the old state's inputs. Only how a script runs differs (locally or over SSH).
 */
import * as crypto from "crypto";
import { Props, ResourceFake, Schema, schemaDiff } from "./fake";

export type RunScript = (inputs: Props, script: string, previous?: Props) => Promise<{ stdout: string; stderr: string }>;

export function commandFake(spec: { type: string; mirrors: string[]; schema: Schema; check: (inputs: Props) => void; run: RunScript }): ResourceFake {
    const { run } = spec;
    return {
        type: spec.type,
        mirrors: spec.mirrors,
        check: spec.check,

        async create(_ctx, i) {
            const out = i.create ? await run(i, i.create) : { stdout: "", stderr: "" };
            return { id: `cmd-${crypto.randomUUID()}`, state: { ...i, ...out } };
        },

        read: async (_ctx, _id, state) => state,

        diff: (state, inputs) => schemaDiff(spec.schema, state, inputs),

        async update(_ctx, _id, state, i) {
            const script = i.update ?? i.create;
            const out = script ? await run(i, script, state) : { stdout: state.stdout, stderr: state.stderr };
            return { ...i, ...out };
        },

        async delete(_ctx, _id, state) {
            if (state.delete) await run(state, state.delete, state);
        },
    };
}
