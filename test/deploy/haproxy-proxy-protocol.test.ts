/**
 * The HAProxy recipes keep client addresses (issue 21): every githa backend
 * server line in every recipe (the TLS ones too) sends PROXY v2, the health
 * checks go to githa's admin port without one, no frontend relies on
 * X-Forwarded-For, SSH does not bind port 22 on every address (the load
 * balancer's own sshd has it), and the githa configs beside them trust
 * exactly the HAProxy addresses. test/integration/proxy-protocol.test.ts and
 * test/deploy/haproxy-tls.test.ts run the same settings through a real
 * HAProxy; test/deploy/deploy.test.ts has `haproxy -c` accept the files.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { trustedPeers } from '../../src/frontends/proxy-listener.js';

const DEPLOY = resolve(import.meta.dirname, '../../deploy');
const read = (path: string): string => readFileSync(join(DEPLOY, path), 'utf8');

/** Sections of an haproxy.cfg: "backend githa_ssh" → its lines, comments dropped. */
function sections(cfg: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = '';
  for (const raw of cfg.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    if (!/^\s/.test(raw)) {
      current = line;
      out.set(current, []);
    } else out.get(current)?.push(line);
  }
  return out;
}

const RECIPES = ['haproxy/haproxy.cfg', 'compose/haproxy.cfg', 'haproxy/haproxy-tls-terminate.cfg', 'haproxy/haproxy-tls-passthrough.cfg'];

describe.each(RECIPES)('%s', (file) => {
  const cfg = sections(read(file));

  it('sends PROXY v2 on every server line to githa, and no X-Forwarded-For', () => {
    const servers = [...cfg].filter(([name]) => name.startsWith('backend ')).flatMap(([, lines]) => lines.filter((l) => l.startsWith('server ')));
    expect(servers.length).toBeGreaterThanOrEqual(file.includes('-tls-') ? 3 : 6);
    for (const s of servers) expect(s).toMatch(/\ssend-proxy-v2(\s|$)/);
    for (const [name, lines] of cfg) expect(lines.filter((l) => /^option forwardfor\b|^http-request (set|add)-header x-forwarded-/i.test(l)), name).toEqual([]);
  });

  it('checks githa on its admin port, without a PROXY header', () => {
    // HAProxy sends the PROXY header with a check only when the check goes to the traffic port, or with check-send-proxy.
    const defaults = cfg.get('defaults') ?? [];
    expect(defaults.filter((l) => l.startsWith('default-server ')).join('\n')).toMatch(/\scheck port 9090(\s|$)/);
    for (const [name, lines] of cfg) expect(lines.filter((l) => /\scheck-send-proxy(\s|$)/.test(l)), name).toEqual([]);
  });

  it('binds SSH on port 22 only on a dedicated address', () => {
    const binds = [...cfg].flatMap(([, lines]) => lines.filter((l) => l.startsWith('bind ')));
    for (const b of binds) expect(b).not.toMatch(/^bind (\*|0\.0\.0\.0|::|\[::\])?:22(\s|$)/);
  });
});

describe('githa configs beside the recipes', () => {
  it('systemd: trusts the HAProxy hosts and the virtual IP, nothing wider', () => {
    const config = parseYaml(read('systemd/githa.yaml')) as { listen: { proxyProtocolFrom: string[] } };
    const trusts = trustedPeers(config.listen.proxyProtocolFrom);
    expect(['10.0.0.41', '10.0.0.42', '10.0.0.10'].map(trusts)).toEqual([true, true, true]);
    expect(['10.0.0.31', '10.0.0.43', '192.0.2.1'].map(trusts)).toEqual([false, false, false]);
    // The SSH frontend binds the address keepalived moves.
    expect(read('keepalived/keepalived.conf')).toMatch(/^\s+10\.0\.0\.10\/24 dev/m);
    expect(read('haproxy/haproxy.cfg')).toMatch(/^\s+bind 10\.0\.0\.10:22$/m);
  });

  it('compose: trusts the haproxy container’s fixed address only', () => {
    const config = parseYaml(read('compose/githa.yaml')) as { listen: { proxyProtocolFrom: string[] } };
    const compose = parseYaml(read('compose/docker-compose.yml')) as {
      services: { haproxy: { networks: { default: { ipv4_address: string } } } };
      networks: { default: { ipam: { config: Array<{ subnet: string }> } } };
    };
    const haproxy = compose.services.haproxy.networks.default.ipv4_address;
    const trusts = trustedPeers(config.listen.proxyProtocolFrom);
    expect(trusts(haproxy)).toBe(true);
    expect(trustedPeers(compose.networks.default.ipam.config.map((c) => c.subnet))(haproxy)).toBe(true);
    expect(['172.28.0.2', '172.28.0.6'].map(trusts)).toEqual([false, false]);
  });
});
