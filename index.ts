/**
 * The mmagent stack: read and validate config, compose the four components, export outputs.
 */
import { composeStack, loadStackConfig } from "./components";

const { config, sshPrivateKey } = loadStackConfig();
const stack = composeStack(config, { sshPrivateKey });

export const urls = stack.urls;
export const gpus = stack.gpus;
export const dockerVersion = stack.dockerVersion;
export const networkName = stack.networkName;
export const containers = stack.containers;
export const volumePaths = stack.volumePaths;
/** Latest pre-change snapshot per container; `snapshots.<container>.snapshot` is a `restoreFrom` value. */
export const snapshots = stack.snapshots;
