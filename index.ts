/**
 * The mmagent stack: read and validate config, compose the four components, export outputs.
 */
import { composeStack, loadStackConfig } from "./components";

// The project directory, not the current one: a relative dev storage root must not move.
const { config, sshPrivateKey } = loadStackConfig(__dirname);
const stack = composeStack(config, { sshPrivateKey });

export const urls = stack.urls;
export const gpus = stack.gpus;
export const dockerVersion = stack.dockerVersion;
export const networkName = stack.networkName;
export const containers = stack.containers;
export const volumePaths = stack.volumePaths;
/** Latest pre-change snapshot per container; `snapshots.<container>.snapshot` is a `restoreFrom` value. */
export const snapshots = stack.snapshots;
/** Where the volumes live (storage backend and root); the next `up` refuses a move. */
export const storage = stack.storage;
/** The CA certificate the routed hosts' certificates chain to (engine haproxy, tls internal): `pulumi stack output proxyCaCertificate > mmagent-ca.pem`, then trust it. */
export const proxyCaCertificate = stack.proxyCaCertificate;
