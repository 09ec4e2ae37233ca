/**
 * Public API of the mmagent component package.
 */
export { TOKENS } from "./tokens";
export * from "./types";
export { parseStackConfig, configError, DEFAULT_IMAGES, CONFIG_NAMESPACE, SERVICE_ROLES } from "./config";
export type { StackConfig, RawStackConfig, ConfigContext } from "./config";
export { NvidiaHost, buildNvidiaHost, prepareHostParams, dockerHostUrl } from "./nvidiaHost";
export type { NvidiaHostArgs } from "./nvidiaHost";
export { StorageLayout, buildStorageLayout, SNAPSHOT_PREFIX } from "./storageLayout";
export type { StorageLayoutArgs, VolumeSpec, ServiceGuard } from "./storageLayout";
export { ReverseProxyNetwork, buildReverseProxyNetwork } from "./reverseProxyNetwork";
export type { ReverseProxyNetworkArgs } from "./reverseProxyNetwork";
export { buildCaddyConfig } from "./caddyConfig";
export type { ProxyRoute } from "./caddyConfig";
export { MultimodalAgentStack, buildMultimodalAgentStack } from "./multimodalAgentStack";
export type { MultimodalAgentStackArgs } from "./multimodalAgentStack";
export { composeStack, planVolumes, planRoutes, planGuards } from "./stack";
export type { StackOutputs, StackSecrets } from "./stack";
export { loadStackConfig } from "./loadConfig";
export { defaultDockerSshDir, dockerSshOpts, knownHostsLine, writeDockerSshFiles, DOCKER_PROVIDER_OVERRIDES } from "./dockerSsh";
