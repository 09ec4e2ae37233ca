/**
 * The network's address plan as the daemon will hold it, declared in full.
 *
 * The docker provider stores `ipamConfigs` as a replace-on-change set read back from the daemon,
 * gateways included. Docker reports a gateway only once it has reserved the pool again after a
 * daemon restart, and it adds an IPv4 pool of its own choosing when none was configured, so a
 * network declared with subnets alone is proposed for replacement after the first restart — a
 * replacement that then fails on the fixed name. Declaring each subnet in the daemon's canonical
 * form with the gateway the daemon picks (the subnet's first address) leaves nothing to drift.
 */
import * as crypto from "crypto";
import * as ipaddr from "ipaddr.js";

export interface IpamConfig {
    subnet: string;
    gateway: string;
}

/**
 * The pool a network's IPv4 /24 comes from when the config names none: RFC 1918 space outside
 * Docker's own address pools (172.17.0.0/16–172.31.0.0/16 and 192.168.0.0/16, see
 * validators.ts `DOCKER_DEFAULT_ADDRESS_POOLS`).
 */
export const DERIVED_IPV4_POOL = "172.16.128.0/17";

/** `fd6d:6d61:6765:0001::/64` → `fd6d:6d61:6765:1::/64`: the form Go's `net.IPNet.String()` returns. */
export function canonicalSubnet(cidr: string): string {
    const [addr, bits] = ipaddr.parseCIDR(cidr);
    const network = ipaddr.fromByteArray(maskBytes(addr.toByteArray(), bits));
    return `${network.toString()}/${bits}`;
}

/** The daemon's default gateway for a subnet: its first address (libnetwork ipam `RequestAddress`). */
export function firstAddress(cidr: string): string {
    const [addr, bits] = ipaddr.parseCIDR(cidr);
    const bytes = maskBytes(addr.toByteArray(), bits);
    for (let i = bytes.length - 1; i >= 0; i--) {
        bytes[i] = (bytes[i] + 1) & 0xff;
        if (bytes[i] !== 0) break;
    }
    return ipaddr.fromByteArray(bytes).toString();
}

/** A /24 in DERIVED_IPV4_POOL picked by the network name: the same on every run and every machine. */
export function derivedIpv4Subnet(networkName: string): string {
    const n = crypto.createHash("sha256").update(networkName).digest().readUInt8(0) & 0x7f;
    return `172.16.${128 + n}.0/24`;
}

/** IPv6 and IPv4 subnets with their gateways, in the daemon's form. */
export function networkIpamConfigs(networkName: string, ipv6Subnet: string, ipv4Subnet?: string): IpamConfig[] {
    return [ipv6Subnet, ipv4Subnet ?? derivedIpv4Subnet(networkName)].map((s) => {
        const subnet = canonicalSubnet(s);
        return { subnet, gateway: firstAddress(subnet) };
    });
}

function maskBytes(bytes: number[], bits: number): number[] {
    return bytes.map((b, i) => {
        const keep = Math.max(0, Math.min(8, bits - i * 8));
        return b & ((0xff << (8 - keep)) & 0xff);
    });
}
