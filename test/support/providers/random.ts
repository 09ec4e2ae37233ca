/**
 * Fakes of `random:index/randomPassword:RandomPassword` and `random:index/randomId:RandomId`:
 * terraform-provider-random (bridged by @pulumi/random 4.21). Every argument is ForceNew; the
 * values are generated here; Read changes nothing.
 */
import * as crypto from "crypto";
import { asSecret } from "../secrets";
import { onlyKnownKeys, ResourceFake, Schema, schemaDiff } from "./fake";

const RANDOM = "hashicorp/terraform-provider-random@v3:internal/provider";

const PASSWORD_SCHEMA: Schema = {
    length: { forceNew: true },
    special: { forceNew: true, default: true },
    keepers: { forceNew: true },
};

export const randomPassword: ResourceFake = {
    type: "random:index/randomPassword:RandomPassword",
    mirrors: [`${RANDOM}/resource_password.go (schema: every argument RequiresReplace)`],
    check: (i) => onlyKnownKeys("RandomPassword", i, Object.keys(PASSWORD_SCHEMA)),
    async create(_ctx, i) {
        const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" + (i.special === false ? "" : "!#$%&*()-_=+[]{}<>:?");
        const result = Array.from({ length: i.length }, () => alphabet[crypto.randomInt(alphabet.length)]).join("");
        return { id: "none", state: { ...i, result: asSecret(result) } };
    },
    read: async (_ctx, _id, state) => state,
    diff: (state, inputs) => schemaDiff(PASSWORD_SCHEMA, state, inputs),
    async update() {
        throw new Error("RandomPassword has no in-place update");
    },
    async delete() {},
};

const ID_SCHEMA: Schema = {
    byteLength: { forceNew: true },
    keepers: { forceNew: true },
    prefix: { forceNew: true },
};

export const randomId: ResourceFake = {
    type: "random:index/randomId:RandomId",
    mirrors: [`${RANDOM}/resource_id.go (schema: every argument RequiresReplace)`],
    check: (i) => onlyKnownKeys("RandomId", i, Object.keys(ID_SCHEMA)),
    async create(_ctx, i) {
        const bytes = crypto.randomBytes(i.byteLength);
        const b64Url = bytes.toString("base64url");
        return { id: b64Url, state: { ...i, hex: bytes.toString("hex"), b64Std: bytes.toString("base64"), b64Url, dec: BigInt(`0x${bytes.toString("hex")}`).toString() } };
    },
    read: async (_ctx, _id, state) => state,
    diff: (state, inputs) => schemaDiff(ID_SCHEMA, state, inputs),
    async update() {
        throw new Error("RandomId has no in-place update");
    },
    async delete() {},
};
