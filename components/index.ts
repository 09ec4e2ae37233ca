/**
 * Public API of the mmagent component package.
 */
export { TOKENS } from "./tokens";
export * from "./types";
export { parseStackConfig, configError, StackConfig, RawStackConfig, ConfigContext, DEFAULT_IMAGES, CONFIG_NAMESPACE, SERVICE_ROLES } from "./config";
export { NvidiaHost, NvidiaHostArgs, buildNvidiaHost, prepareHostParams, dockerHostUrl } from "./nvidiaHost";
export { StorageLayout, StorageLayoutArgs, VolumeSpec, ServiceGuard, buildStorageLayout, SNAPSHOT_PREFIX } from "./storageLayout";
export { ReverseProxyNetwork, ReverseProxyNetworkArgs, buildReverseProxyNetwork } from "./reverseProxyNetwork";
export { ProxyRoute, buildCaddyConfig } from "./caddyConfig";
export { MultimodalAgentStack, MultimodalAgentStackArgs, buildMultimodalAgentStack } from "./multimodalAgentStack";
export { composeStack, StackOutputs, StackSecrets, planVolumes, planRoutes, planGuards } from "./stack";
export { loadStackConfig } from "./loadConfig";
