/**
 * Component-provider entry point (PulumiPlugin.yaml): serves the four components to any Pulumi
 * language through `@pulumi/pulumi/provider/experimental`, which infers the package schema from
 * the constructors' `args` interfaces.
 *
 * What it serves are the provider's own components (provider/components/*.ts), one per file:
 * thin ComponentResources with the same names as the TypeScript API's components, whose inputs
 * use only what the inference supports (flat objects, lists, maps, strings, numbers, booleans,
 * `as const` string enums, `Input<…>`) and which validate their inputs with the stack config's
 * rules, then create the real component (components/*.ts) as their child. Their tokens are
 * `mmagent:index:<Name>`; the TypeScript API is unchanged.
 */
import { componentProviderHost } from "@pulumi/pulumi/provider/experimental";
import { MultimodalAgentStack } from "./components/multimodalAgentStack";
import { NvidiaHost } from "./components/nvidiaHost";
import { ReverseProxyNetwork } from "./components/reverseProxyNetwork";
import { StorageLayout } from "./components/storageLayout";
import { PROVIDER_NAME } from "./tokens";

export { MultimodalAgentStack, NvidiaHost, ReverseProxyNetwork, StorageLayout, PROVIDER_NAME };

export const COMPONENTS = [NvidiaHost, StorageLayout, ReverseProxyNetwork, MultimodalAgentStack];

// Pulumi's Node.js runtime (`@pulumi/pulumi/cmd/run-plugin`) requires this module and serves the
// components it exports, under package.json's `name` ("mmagent" = PROVIDER_NAME). Run directly
// (e.g. with ts-node), it starts the same host itself.
if (require.main === module) {
    componentProviderHost({ name: PROVIDER_NAME, components: COMPONENTS, dirname: __dirname }).catch((e) => {
        console.error(e);
        process.exit(1);
    });
}
