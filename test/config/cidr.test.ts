/** listen.proxyProtocolFrom's ranges (src/config/cidr.ts) and their check in the config schema. */
import { describe, expect, it } from 'vitest';
import { parseCidr } from '../../src/config/cidr.js';
import { buildConfig } from '../../src/config/load.js';

const minimal = { backends: [{ id: 'b1', http: 'http://127.0.0.1:1/' }] };

describe('parseCidr', () => {
  it('reads ranges and single addresses of both families', () => {
    expect(parseCidr('10.0.0.0/8')).toEqual({ address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    expect(parseCidr('192.0.2.7')).toEqual({ address: '192.0.2.7', prefix: 32, family: 'ipv4' });
    expect(parseCidr('2001:db8::/32')).toEqual({ address: '2001:db8::', prefix: 32, family: 'ipv6' });
    expect(parseCidr('::1')).toEqual({ address: '::1', prefix: 128, family: 'ipv6' });
  });

  it.each(['', 'example.com', '10.0.0.0/33', '::1/129', '10.0.0.0/08', '10.0.0.0/', '010.0.0.1', 'fe80::1%eth0', '10.0.0.0/8 ', '*'])('refuses %j', (text) => {
    expect(parseCidr(text)).toBeUndefined();
  });
});

describe('listen.proxyProtocolFrom', () => {
  it('is empty (off) by default and takes a list of ranges', () => {
    expect(buildConfig(minimal, {}).listen.proxyProtocolFrom).toEqual([]);
    expect(buildConfig({ ...minimal, listen: { proxyProtocolFrom: ['10.0.0.41/32', '2001:db8::/64'] } }, {}).listen.proxyProtocolFrom).toEqual(['10.0.0.41/32', '2001:db8::/64']);
  });

  it('refuses what names no range', () => {
    expect(() => buildConfig({ ...minimal, listen: { proxyProtocolFrom: ['haproxy.internal'] } }, {})).toThrow(/proxyProtocolFrom/);
  });
});
