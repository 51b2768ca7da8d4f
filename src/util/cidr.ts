/**
 * CIDR networks, one definition, on `node:net`'s `BlockList` (no address arithmetic of our
 * own): parsing with a clear error, a boolean check for the configuration schema, and the
 * matcher of every allow-list (`auth.allowNetworks`, `http.trustProxy`,
 * `push.allowNetworks`).
 */
import { BlockList, isIP } from 'node:net';

/** A parsed network: its address, prefix length and family. */
export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/**
 * Parses `10.0.0.0/8`, `fd00::/8`, `::ffff:10.0.0.0/104` or a bare address (one host).
 * @throws Error naming the value when it is not an address or the prefix is out of range.
 */
export function parseCidr(text: string): Cidr {
  const [address = '', prefixText, extra] = text.trim().split('/');
  const version = isIP(address);
  const max = version === 4 ? 32 : 128;
  if (
    version === 0 ||
    extra !== undefined ||
    (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) ||
    Number(prefixText ?? max) > max
  ) {
    throw new Error(`invalid CIDR network: ${JSON.stringify(text)}`);
  }
  return {
    address,
    prefix: Number(prefixText ?? max),
    family: version === 4 ? 'ipv4' : 'ipv6',
  };
}

/** Loopback networks: 127.0.0.0/8 and ::1/128. */
export const LOOPBACK_NETWORKS: readonly string[] = ['127.0.0.0/8', '::1/128'];

/**
 * A matcher for a list of networks (`node:net` BlockList; IPv4 and IPv6; IPv4-mapped IPv6
 * clients `::ffff:a.b.c.d` match IPv4 networks; a zone `%eth0` is ignored). Use it for any
 * allow-list, e.g. the push module's PBX networks or the trusted proxies.
 * @throws Error when an entry is not a valid network (see {@link parseCidr}).
 * @returns a function: IP address string → inside one of the networks (false for non-IPs).
 */
export function createCidrMatcher(networks: readonly string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const network of networks.map(parseCidr)) {
    list.addSubnet(network.address, network.prefix, network.family);
  }
  return (address) => {
    const ip = address.replace(/%.*$/, '');
    const version = isIP(ip);
    return version !== 0 && list.check(ip, version === 4 ? 'ipv4' : 'ipv6');
  };
}

/** True when `text` is a network {@link parseCidr} accepts (the schema's `switchboard-cidr`). */
export function isCidr(text: string): boolean {
  try {
    parseCidr(text);
    return true;
  } catch {
    return false;
  }
}
