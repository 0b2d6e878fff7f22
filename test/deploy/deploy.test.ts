/**
 * deploy/ validated offline (no Docker engine or Kubernetes cluster in CI):
 * every githa configuration in it passes githa's own validator; the compose
 * and Kubernetes files parse and hang together (files, ports, probes, secrets);
 * HAProxy accepts its configs (`haproxy -c`); sshd accepts the backend setup
 * script's drop-in (`sshd -t`); every shell script parses (`bash -n`); the
 * systemd unit and the Dockerfile keep their hardening.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { buildConfig } from '../../src/config/load.js';

const run = promisify(execFile);
const DEPLOY = resolve(import.meta.dirname, '../../deploy');
const tmp = mkdtempSync(join(tmpdir(), 'githa-deploy-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const read = (path: string): string => readFileSync(join(DEPLOY, path), 'utf8');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

/** The parts of the Kubernetes manifests (deploy/kubernetes/githa.yaml) this test reads. */
interface K8sContainer {
  ports: Array<{ name: string }>;
  readinessProbe: { httpGet: unknown };
  livenessProbe: { httpGet: unknown };
  securityContext: unknown;
  volumeMounts: Array<{ name: string; mountPath: string }>;
}
interface K8sVolume {
  name: string;
  secret?: { secretName: string };
  configMap?: { name: string };
}
interface K8sMetadata {
  name: string;
  labels?: Record<string, string>;
}
interface K8sDeployment {
  apiVersion: string;
  kind: 'Deployment';
  metadata: K8sMetadata;
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: { containers: K8sContainer[]; securityContext: { runAsNonRoot?: boolean }; volumes: K8sVolume[] } };
  };
}
interface K8sService {
  apiVersion: string;
  kind: 'Service';
  metadata: K8sMetadata;
  spec: { selector: Record<string, string>; ports: Array<{ targetPort: string }> };
}
interface K8sConfigMap {
  apiVersion: string;
  kind: 'ConfigMap';
  metadata: K8sMetadata;
  data: Record<string, string>;
}
interface K8sOther {
  apiVersion: string;
  kind: string;
  metadata?: K8sMetadata;
}
type K8sDoc = K8sDeployment | K8sService | K8sConfigMap | K8sOther;
const k8sDocs = (): K8sDoc[] => parseAllDocuments(read('kubernetes/githa.yaml')).map((d) => d.toJS() as K8sDoc);
/** The manifests of one kind. */
function ofKind<K extends (K8sDeployment | K8sService | K8sConfigMap)['kind']>(docs: K8sDoc[], kind: K): Array<Extract<K8sDoc, { kind: K }>> {
  return docs.filter((d): d is Extract<K8sDoc, { kind: K }> => d.kind === kind);
}

/** The parts of deploy/compose/docker-compose.yml this test reads. */
interface ComposeService {
  command?: string[];
  healthcheck?: { test: string[] };
  cap_drop?: string[];
  read_only?: boolean;
  build?: { context: string; dockerfile: string };
  volumes?: string[];
  depends_on?: string[] | Record<string, unknown>;
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** Every githa configuration in deploy/: the files and the one inside the Kubernetes ConfigMap. */
function githaConfigs(): Array<[string, unknown]> {
  const [configMap] = ofKind(k8sDocs(), 'ConfigMap');
  return [
    ['compose/githa.yaml', parseYaml(read('compose/githa.yaml'))],
    ['systemd/githa.yaml', parseYaml(read('systemd/githa.yaml'))],
    ['kubernetes/githa.yaml ConfigMap', parseYaml(configMap!.data['githa.yaml']!)],
  ];
}

describe('deploy/ githa configurations', () => {
  it.each(githaConfigs())('%s passes githa’s config validator', (_name, doc) => {
    const config = buildConfig(doc, {});
    expect(config.backends.length).toBeGreaterThanOrEqual(3);
    expect(config.listen.admin).toMatch(/^0\.0\.0\.0:9090$/);
  });

  it('the list above covers every githa configuration in deploy/', () => {
    const yamlFiles = files(DEPLOY).filter((f) => /\.ya?ml$/.test(f) && /^\s*backends:/m.test(readFileSync(f, 'utf8')));
    expect(yamlFiles.map((f) => f.slice(DEPLOY.length + 1)).sort()).toEqual(['compose/githa.yaml', 'kubernetes/githa.yaml', 'systemd/githa.yaml']);
  });

  it('with Sentinel, configs wait for a replica before acknowledging', () => {
    for (const [name, doc] of githaConfigs()) {
      const c = buildConfig(doc, {});
      if (c.redis.sentinels) expect(c.redis.waitReplicas, name).toBeGreaterThanOrEqual(1);
    }
  });
});

describe('deploy/compose', () => {
  // Compose resolves YAML merge keys (`<<: *githa`); the yaml package does so only when asked.
  const compose = parseYaml(read('compose/docker-compose.yml'), { merge: true }) as ComposeFile;
  const services = compose.services;

  it('has Redis with AOF fsynced before every reply, three backends, two githas and HAProxy', () => {
    expect(Object.keys(services).sort()).toEqual(['b1', 'b2', 'b3', 'githa1', 'githa2', 'haproxy', 'keys', 'redis']);
    const redis = services.redis!.command!.join(' ');
    expect(redis).toContain('--appendonly yes');
    // docs/deploy.md#what-redis-can-lose: everysec loses the last second on a host crash.
    expect(redis).toContain('--appendfsync always');
    expect(redis).not.toContain('everysec');
    for (const g of ['githa1', 'githa2']) {
      expect(services[g]!.healthcheck!.test.join(' ')).toContain('/readyz');
      expect(services[g]!.cap_drop).toEqual(['ALL']);
      expect(services[g]!.read_only).toBe(true);
    }
  });

  it('every build context, Dockerfile, mounted file and named volume exists', () => {
    const base = join(DEPLOY, 'compose');
    for (const [name, s] of Object.entries(services)) {
      if (s.build) {
        const context = resolve(base, s.build.context);
        expect(existsSync(join(context, s.build.dockerfile)), `${name} Dockerfile`).toBe(true);
      }
      for (const v of s.volumes ?? []) {
        const [source] = v.split(':');
        if (source!.startsWith('.')) expect(existsSync(resolve(base, source!)), `${name} mounts ${source}`).toBe(true);
        else expect(Object.keys(compose.volumes ?? {}), `${name} volume ${source}`).toContain(source);
      }
      for (const dep of Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {})) expect(services, `${name} depends on ${dep}`).toHaveProperty(dep);
    }
  });

  it('githa waits for Redis only, so it starts with any backend down', () => {
    for (const g of ['githa1', 'githa2']) expect(services[g]!.depends_on, g).toEqual({ redis: { condition: 'service_healthy' } });
  });

  it('docker compose config accepts the file (or the test says why it cannot run, and the YAML checks above stand in)', async () => {
    const file = join(DEPLOY, 'compose/docker-compose.yml');
    const plugin = await run('docker', ['compose', 'version']).then(
      () => undefined,
      (err: Error & { stderr?: string }) => `docker compose version failed: ${(err.stderr ?? err.message).trim().replace(/\s+/g, ' ')}`,
    );
    if (!plugin) {
      await run('docker', ['compose', '-f', file, 'config', '-q']);
      return;
    }
    // Debian's docker-compose package (1.29, deploy/debian-setup.sh) validates the same
    // services schema; it predates the compose spec's top-level `name`, so it reads the file without that line.
    const standalone = await run('docker-compose', ['version', '--short']).then(
      ({ stdout }) => stdout.trim(),
      () => undefined,
    );
    if (standalone) {
      console.warn(`${plugin}; validating with docker-compose ${standalone} instead, the file without its top-level name`);
      const text = readFileSync(file, 'utf8');
      expect(text).toMatch(/^name: githa$/m);
      const check = run('docker-compose', ['--project-directory', dirname(file), '-f', '-', 'config', '-q']);
      check.child.stdin!.end(text.replace(/^name: githa\n/m, ''));
      await check;
      return;
    }
    console.warn(`${plugin}; docker-compose not found either; docker compose config NOT run: deploy/compose/docker-compose.yml checked structurally only`);
    expect(Object.keys(services)).toContain('redis');
  });

  it('githa’s config names the compose services and the keys service’s files', () => {
    const config = buildConfig(parseYaml(read('compose/githa.yaml')), {});
    expect(config.backends.map((b) => new URL(b.http!).hostname)).toEqual(['b1', 'b2', 'b3']);
    expect(new URL(config.redis.url!).hostname).toBe('redis');
    const keys = read('compose/keys.sh');
    for (const f of [...config.ssh.hostKeys!, config.ssh.backendKey!, config.ssh.backendKnownHosts!]) expect(keys).toContain(f.replace('/secrets/', ''));
  });

  it('the githa image is multi-stage, small and non-root', () => {
    const dockerfile = read('compose/Dockerfile');
    const stages = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    expect(stages.length).toBeGreaterThanOrEqual(2);
    // Node.js 24 (docs/deploy.md#nodejs); the add-ons built in the first stage run in the last, so both are the same node.
    expect(stages.at(-1)).toBe('node:24-slim');
    expect(new Set(stages.filter((s) => s!.startsWith('node:')))).toEqual(new Set(['node:24-slim']));
    const final = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(final).toMatch(/^USER node$/m);
    expect(final).not.toMatch(/apt-get install/);
  });
});

describe('deploy/kubernetes', () => {
  it('a Deployment with /readyz and /healthz probes, the SSH host key Secret and the ConfigMap; Services that select its pods', () => {
    const docs = k8sDocs();
    for (const d of docs) {
      expect(d.apiVersion, JSON.stringify(d.metadata)).toMatch(/^(v1|apps\/v1|policy\/v1)$/);
      expect(d.metadata?.name).toMatch(/^[a-z0-9-]+$/);
    }
    const kinds = docs.map((d) => d.kind);
    expect(kinds).toEqual(expect.arrayContaining(['Namespace', 'ConfigMap', 'Deployment', 'Service', 'PodDisruptionBudget']));
    const deployment = ofKind(docs, 'Deployment')[0]!;
    const configMap = ofKind(docs, 'ConfigMap')[0]!;
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0]!;
    const portNames = container.ports.map((p) => p.name);
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    const volumes = new Map(pod.volumes.map((v) => [v.name, v]));
    expect(volumes.get('secrets')!.secret?.secretName).toBe('githa-ssh');
    expect(volumes.get('config')!.configMap?.name).toBe(configMap.metadata.name);
    for (const m of container.volumeMounts) expect(volumes.has(m.name), m.name).toBe(true);
    // Files githa reads are where the volumes put them.
    const config = buildConfig(parseYaml(configMap.data['githa.yaml']!), {});
    const secretsMount = container.volumeMounts.find((m) => m.name === 'secrets')!.mountPath;
    for (const f of [...config.ssh.hostKeys!, config.ssh.authorizedKeys!, config.ssh.backendKey!, config.ssh.backendKnownHosts!]) expect(dirname(f)).toBe(secretsMount);
    for (const svc of ofKind(docs, 'Service')) {
      expect(deployment.spec.template.metadata.labels).toMatchObject(svc.spec.selector);
      for (const p of svc.spec.ports) expect(portNames).toContain(p.targetPort);
    }
    expect(deployment.spec.selector.matchLabels).toEqual(deployment.spec.template.metadata.labels);
  });
});

describe('deploy/haproxy, systemd, shell scripts', () => {
  it.each(['haproxy/haproxy.cfg', 'compose/haproxy.cfg'])('haproxy -c accepts %s, with /readyz health checks', async (cfg) => {
    const { stdout, stderr } = await run('haproxy', ['-c', '-f', join(DEPLOY, cfg)]);
    expect(`${stdout}${stderr}`).toContain('Configuration file is valid');
    const text = read(cfg);
    expect(text.match(/http-check send meth GET uri \/readyz/g)!.length).toBe(3);
    expect(text).toMatch(/check port 9090/);
  });

  it('every shell script parses', async () => {
    const scripts = files(DEPLOY).filter((f) => f.endsWith('.sh'));
    expect(scripts.length).toBeGreaterThanOrEqual(4);
    for (const s of scripts) await run('bash', ['-n', s]);
  });

  it('sshd accepts the backend setup script’s drop-in (AcceptEnv GIT_PROTOCOL for git)', async () => {
    const script = read('systemd/git-backend-setup.sh');
    const dropIn = /cat >\/etc\/ssh\/sshd_config\.d\/githa-backend\.conf <<EOF\n([\s\S]*?)\nEOF\n/.exec(script)![1]!;
    expect(dropIn).toMatch(/^Match User git$/m);
    expect(dropIn).toMatch(/^\s+AcceptEnv GIT_PROTOCOL$/m);
    const key = join(tmp, 'host_key');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const conf = join(tmp, 'sshd_config');
    writeFileSync(conf, `HostKey ${key}\nPidFile none\n${dropIn}\n`);
    await run('/usr/sbin/sshd', ['-t', '-f', conf]);
  });

  it('the backend setup script makes git fsync objects and refs (core.fsync=committed,reference)', async () => {
    const script = read('systemd/git-backend-setup.sh');
    expect(script).toMatch(/^\s*git config --system core\.fsync committed,reference$/m);
    // git knows every component named (an unknown one is ignored with a warning).
    const repo = join(tmp, 'fsync.git');
    await run('git', ['init', '-q', '--bare', repo]);
    const { stderr } = await run('git', ['-C', repo, '-c', 'core.fsync=committed,reference', 'pack-refs', '--all']);
    expect(stderr).not.toMatch(/core\.fsync/);
  });

  it('the githa unit is hardened', () => {
    const unit = read('systemd/githa.service');
    for (const line of ['User=githa', 'ProtectSystem=strict', 'NoNewPrivileges=yes', 'CapabilityBoundingSet=', 'PrivateTmp=yes', 'ProtectHome=yes']) {
      expect(unit).toMatch(new RegExp(`^${line}$`, 'm'));
    }
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/node \/opt\/githa\/dist\/cli\/main\.js serve --config \/etc\/githa\/githa\.yaml$/m);
    const config = buildConfig(parseYaml(read('systemd/githa.yaml')), {});
    // The secrets githa reads are the credentials the unit loads.
    for (const f of [config.ssh.hostKeys![0]!, config.ssh.backendKey!]) {
      const name = f.replace('/run/credentials/githa.service/', '');
      expect(unit).toMatch(new RegExp(`^LoadCredential=${name}:`, 'm'));
    }
  });
});
