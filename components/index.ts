/**
 * Public API of the mmagent component package.
 */
export { TOKENS } from "./tokens";
export * from "./types";
export { parseStackConfig, configError, proxyImage, defaultProxyEngine, DEFAULT_IMAGES, CONFIG_NAMESPACE, SERVICE_ROLES } from "./config";
export type { StackConfig, RawStackConfig, ConfigContext, ServiceRole, ServicesConfig, ConfigProblem, ResolvedProxyEngine } from "./config";
export { NvidiaHost, buildNvidiaHost, prepareHostParams, dockerHostUrl } from "./nvidiaHost";
export type { NvidiaHostArgs, NvidiaHostParts, HostReport } from "./nvidiaHost";
export type { ServiceGpus } from "./gpus";
export { StorageLayout, buildStorageLayout, SNAPSHOT_PREFIX } from "./storageLayout";
export type { StorageLayoutArgs, VolumeSpec, ServiceGuard, NfsSource, StoragePlacement, StorageVolume, ServiceStorage, StorageLayoutParts } from "./storageLayout";
export { ReverseProxyNetwork, buildReverseProxyNetwork } from "./reverseProxyNetwork";
export type { ReverseProxyNetworkArgs, ReverseProxyNetworkParts, ProxyConfigResult, ProxyEngine } from "./reverseProxyNetwork";
export { buildCaddyConfig, routePrecedence } from "./caddyConfig";
export { buildHaproxyConfig } from "./haproxyConfig";
export type { HaproxyConfigArgs } from "./haproxyConfig";
export { buildInternalCertificates, certificateHosts } from "./proxyCertificates";
export type { InternalCertificates, HostCertificate } from "./proxyCertificates";
export type { ProxyRoute, CaddyConfigArgs } from "./caddyConfig";
export { MultimodalAgentStack, buildMultimodalAgentStack } from "./multimodalAgentStack";
export type { MultimodalAgentStackArgs, MultimodalAgentStackParts, ServiceStorageLookup } from "./multimodalAgentStack";
export { composeStack, planVolumes, planRoutes, planGuards } from "./stack";
export type { StackOutputs, StackSecrets } from "./stack";
export { loadStackConfig } from "./loadConfig";
export type { LoadedConfig } from "./loadConfig";
export { defaultDockerSshDir, dockerSshOpts, knownHostsLine, writeDockerSshFiles, DOCKER_PROVIDER_OVERRIDES } from "./dockerSsh";
export type { DockerSshFiles } from "./dockerSsh";
