/**
 * The `redis` section: one URL or Redis Sentinel (exactly one of the two),
 * WAIT settings, and how a target is parsed and named in messages.
 */
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { DEFAULTS } from '../../src/config/defaults.js';
import { ConfigError } from '../../src/errors.js';
import { describeRedis, parseHostPort } from '../../src/state/redis.js';

const backends = [{ id: 'b1', http: 'http://10.0.0.1:8080/git' }];

describe('redis config', () => {
  it('defaults to one Redis at the default URL, no WAIT', () => {
    const c = buildConfig({ backends }, {});
    expect(c.redis).toMatchObject({ url: DEFAULTS.redis.url, name: 'mymaster', waitReplicas: 0, waitTimeoutMs: 1_000 });
    expect(c.redis.sentinels).toBeUndefined();
  });

  it('takes sentinels instead of a URL, with the master name, passwords and WAIT', () => {
    const c = buildConfig(
      { backends, redis: { sentinels: ['10.0.0.5:26379', '[fd00::7]:26379'], name: 'githa', password: 'p', sentinelPassword: 's', waitReplicas: 1, waitTimeoutMs: 500 } },
      {},
    );
    expect(c.redis).toMatchObject({ sentinels: ['10.0.0.5:26379', '[fd00::7]:26379'], name: 'githa', password: 'p', sentinelPassword: 's', waitReplicas: 1, waitTimeoutMs: 500 });
    expect(c.redis.url).toBeUndefined();
  });

  it('with sentinels and no waitReplicas, waits for one replica', () => {
    const c = buildConfig({ backends, redis: { sentinels: ['s:26379'] } }, {});
    expect(c.redis).toMatchObject({ waitReplicas: 1, acceptFailoverLoss: false });
  });

  it('takes waitReplicas 0 with sentinels only with acceptFailoverLoss', () => {
    const c = buildConfig({ backends, redis: { sentinels: ['s:26379'], waitReplicas: 0, acceptFailoverLoss: true } }, {});
    expect(c.redis.waitReplicas).toBe(0);
  });

  it('GITHA_REDIS_URL (one Redis) takes the one-Redis default, 0', () => {
    expect(buildConfig({ backends, redis: { sentinels: ['s:26379'] } }, { GITHA_REDIS_URL: 'redis://r:1' }).redis.waitReplicas).toBe(0);
  });

  it.each([
    [{ sentinels: ['s:26379'], waitReplicas: 0 }, 'redis.waitReplicas: 0 with redis.sentinels or redis.cluster lets a failover lose acknowledged pushes'],
    [{ url: 'redis://r:1', sentinels: ['s:26379'] }, 'redis: set one of redis.url, redis.sentinels and redis.cluster'],
    [{ url: 'redis://r:1', cluster: ['n:6379'] }, 'redis: set one of redis.url, redis.sentinels and redis.cluster'],
    [{ sentinels: ['s:26379'], cluster: ['n:6379'] }, 'redis: set one of redis.url, redis.sentinels and redis.cluster'],
    [{ cluster: ['n:6379'], waitReplicas: 0 }, 'redis.waitReplicas: 0 with redis.sentinels or redis.cluster lets a failover lose acknowledged pushes'],
    [{ cluster: [] }, 'redis.cluster'],
    [{ cluster: ['n'] }, 'redis.cluster.0: expected "host:port"'],
    [{ sentinels: [] }, 'redis.sentinels'],
    [{ sentinels: ['s'] }, 'redis.sentinels.0: expected "host:port"'],
    [{ sentinels: ['s:26379'], waitReplicas: -1 }, 'redis.waitReplicas'],
    [{ sentinels: ['s:26379'], bogus: 1 }, 'bogus'],
  ])('refuses %j', (redis, message) => {
    expect(() => buildConfig({ backends, redis }, {})).toThrow(ConfigError);
    expect(() => buildConfig({ backends, redis }, {})).toThrow(message);
  });

  it('redis.cluster: the seed nodes, WAIT for 1 replica by default, 0 only with acceptFailoverLoss; GITHA_REDIS_URL replaces it', () => {
    const c = buildConfig({ backends, redis: { cluster: ['10.0.0.1:6379', '[::1]:7000'] } }, {});
    expect(c.redis).toMatchObject({ cluster: ['10.0.0.1:6379', '[::1]:7000'], waitReplicas: 1 });
    expect(c.redis.url).toBeUndefined();
    expect(buildConfig({ backends, redis: { cluster: ['n:1'], waitReplicas: 0, acceptFailoverLoss: true } }, {}).redis.waitReplicas).toBe(0);
    const env = buildConfig({ backends, redis: { cluster: ['n:1'] } }, { GITHA_REDIS_URL: 'redis://r:1' });
    expect(env.redis).toMatchObject({ url: 'redis://r:1', waitReplicas: 0 });
    expect(env.redis.cluster).toBeUndefined();
  });

  it('GITHA_REDIS_URL replaces a configured Sentinel set', () => {
    const c = buildConfig({ backends, redis: { sentinels: ['s:26379'], prefix: 'x:' } }, { GITHA_REDIS_URL: 'redis://r:1' });
    expect(c.redis).toMatchObject({ url: 'redis://r:1', prefix: 'x:' });
    expect(c.redis.sentinels).toBeUndefined();
  });
});

describe('redis targets', () => {
  it('parses host:port and bracketed IPv6', () => {
    expect(parseHostPort('10.0.0.5:26379')).toEqual({ host: '10.0.0.5', port: 26379 });
    expect(parseHostPort('[fd00::7]:26379')).toEqual({ host: 'fd00::7', port: 26379 });
    expect(() => parseHostPort('nohost')).toThrow('host:port');
  });

  it('names a target without its password', () => {
    expect(describeRedis('redis://:secret@r:6379/0')).not.toContain('secret');
    expect(describeRedis({ sentinels: ['a:1', 'b:2'], name: 'm', password: 'secret' })).toBe('master m of sentinels a:1, b:2');
  });
});
