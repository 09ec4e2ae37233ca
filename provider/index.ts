/**
 * Component-provider entry point (PulumiPlugin.yaml): serves the four components to any Pulumi
 * language through `@pulumi/pulumi/provider/experimental`, which infers the schema from the
 * constructors' `args` interfaces. The package name is the token prefix of the components.
 */
import { componentProviderHost } from "@pulumi/pulumi/provider/experimental";
import { MultimodalAgentStack, NvidiaHost, ReverseProxyNetwork, StorageLayout } from "../components";

export { MultimodalAgentStack, NvidiaHost, ReverseProxyNetwork, StorageLayout };

export const PROVIDER_NAME = "mmagent";
export const COMPONENTS = [NvidiaHost, StorageLayout, ReverseProxyNetwork, MultimodalAgentStack];

if (require.main === module) {
    componentProviderHost({ name: PROVIDER_NAME, components: COMPONENTS, dirname: __dirname }).catch((e) => {
        console.error(e);
        process.exit(1);
    });
}
