/** Every resource type the real-engine harness can apply: one fake each. */
import { dockerContainer } from "./dockerContainer";
import { dockerNetwork } from "./dockerNetwork";
import { dockerVolume } from "./dockerVolume";
import { dockerProvider } from "./dockerProvider";
import { stackReference } from "./engineBuiltins";
import { remoteCommand } from "./remoteCommand";
import { Props, ResourceFake } from "./fake";
import { reveal } from "../secrets";
import { localCommand } from "./localCommand";
import { randomId, randomPassword } from "./random";
import { tlsCertRequest, tlsLocallySignedCert, tlsPrivateKey, tlsSelfSignedCert } from "./tls";

export const FAKES: Record<string, ResourceFake> = Object.fromEntries(
    [dockerContainer, dockerNetwork, dockerVolume, dockerProvider, stackReference, localCommand, remoteCommand, randomPassword, randomId, tlsPrivateKey, tlsCertRequest, tlsSelfSignedCert, tlsLocallySignedCert].map((f) => [f.type, f]),
);

export function fakeFor(type: string): ResourceFake {
    const fake = FAKES[type];
    if (!fake) throw new Error(`resource type ${type} is not modelled by the real-engine harness (test/support/providers/)`);
    return fake;
}

/**
 * Creates a resource with its fake alone, outside an apply, and returns the state it would store,
 * secrets unwrapped: for fakes that need no engine (the TLS provider's), where a test wants what
 * the provider would have made.
 */
export async function createWithFake(type: string, inputs: Props): Promise<Props> {
    const fake = fakeFor(type);
    fake.check(inputs);
    return reveal<Props>((await fake.create({} as any, inputs)).state);
}
