/**
 * The provider's package name and its components' type tokens: `mmagent:index:<Name>`, the
 * tokens `pulumi package add` puts in every language's SDK. (The TypeScript API's components
 * keep their own tokens, components/tokens.ts: each provider component is a parent of one.)
 */
export const PROVIDER_NAME = "mmagent";

export const PROVIDER_TOKENS = {
    nvidiaHost: `${PROVIDER_NAME}:index:NvidiaHost`,
    storageLayout: `${PROVIDER_NAME}:index:StorageLayout`,
    reverseProxyNetwork: `${PROVIDER_NAME}:index:ReverseProxyNetwork`,
    multimodalAgentStack: `${PROVIDER_NAME}:index:MultimodalAgentStack`,
} as const;
