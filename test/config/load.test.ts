import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse, parseDocument } from 'yaml';
import { AMI_CLIENT_DEFAULTS } from '../../src/ami/defaults.ts';
import { AMQP_BUS_DEFAULTS } from '../../src/bus/defaults.ts';
import {
  ConfigError,
  configEnvSettings,
  defaultConfig,
  loadConfig,
  REDACTED,
  REMOVED_KEYS,
  redactConfig,
  redactUrl,
  resolveConfigFiles,
} from '../../src/config/load.ts';
import { ConfigSchema } from '../../src/config/schema.ts';

const EXAMPLE = new URL('../../switchboard.example.yaml', import.meta.url);
const DOCS = new URL('../../docs/configuration.md', import.meta.url);

function problemsOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a ConfigError');
}

describe('loadConfig: defaults', () => {
  test('an empty file is valid and gives the embedded default', () => {
    const config = loadConfig({ text: '', env: {} });
    assert.equal(config.database.url, './data/switchboard.db');
    assert.equal(config.amqp.url, '');
    assert.equal(config.http.listen, '127.0.0.1:8080');
    assert.deepEqual(config.ami.servers, []);
    assert.equal(config.auth.allowLoopback, true);
    assert.equal(config.push.budgetMs, 4000);
    assert.equal(config.push.intervalMs, 1000);
    assert.equal(config.push.maxPushes, 3);
    assert.equal(config.announce.listen, '127.0.0.1:9600');
    assert.equal(config.amqp.exchange, 'xivo');
  });

  test('no file and no env gives the same as an empty file', () => {
    assert.deepEqual(loadConfig({ env: {} }), loadConfig({ text: '', env: {} }));
  });

  test('instance.uuid is derived, stable, and a UUID', () => {
    const a = loadConfig({ env: {} }).instance.uuid;
    assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(loadConfig({ env: {} }).instance.uuid, a);
    assert.notEqual(loadConfig({ text: 'instance: {name: other}', env: {} }).instance.uuid, a);
  });

  test('the Barista sample texts are shipped as defaults', () => {
    const { callout } = loadConfig({ env: {} });
    assert.equal(callout.head['2']?.['ja-jp'], '障害を検知しました。サーバー名は、{hostname}。');
    assert.equal(
      callout.foot['1']?.['ja-jp'],
      '対応できる場合は1を、できない場合は2を押してください。',
    );
    assert.ok(callout.head['2']?.en?.includes('{hostname}'));
    assert.ok(callout.foot['1']?.en);
  });

  test('AMI server defaults are filled per item and name defaults to host:port', () => {
    const config = loadConfig({
      text: 'ami:\n  servers:\n    - url: tcp://u:p@pbx.example:5038\n    - url: tls://u:p@pbx2\n      auth: md5\n',
      env: {},
    });
    assert.equal(config.ami.servers[0]?.pingIntervalMs, 20000);
    assert.equal(config.ami.servers[0]?.name, 'pbx.example:5038');
    assert.equal(config.ami.servers[1]?.auth, 'md5');
    assert.equal(config.ami.servers[1]?.name, 'pbx2:5038');
  });

  test('simulator scripts per number get the script defaults', () => {
    const config = loadConfig({
      text: "simulator:\n  scripts:\n    '100': {outcome: busy}\n",
      env: {},
    });
    assert.deepEqual(config.simulator.scripts['100'], {
      ...config.simulator.defaultScript,
      outcome: 'busy',
    });
  });
});

describe('loadConfig: errors name the key', () => {
  test('every problem is listed with its key, none with its value', () => {
    const error = problemsOf(() =>
      loadConfig({
        text: [
          'amqp: {url: "http://guest:hunter2-secret@broker"}',
          'ami: {servers: [{name: x}]}',
          'log: {level: loud}',
          'http: {listen: "nowhere", bodyLimitBytes: 12}',
          'auth: {allowNetworks: ["10.0.0.0/33"], tokens: [{token: short}]}',
          'callout: {head: {x: {en: hi}}}',
          'bogus: 1',
        ].join('\n'),
        env: {},
      }),
    );
    const keys = error.problems.map((p) => p.key);
    for (const key of [
      'amqp.url',
      'ami.servers[0].url',
      'log.level',
      'http.listen',
      'http.bodyLimitBytes',
      'auth.allowNetworks[0]',
      'auth.tokens[0].token',
      'callout.head.x',
      'bogus',
    ]) {
      assert.ok(keys.includes(key), `missing ${key} in ${keys.join(', ')}`);
    }
    assert.match(error.message, /^config: amqp\.url: expected a URL \(amqp:\/\/ or amqps:\/\/\)/m);
    assert.match(error.message, /^config: ami\.servers\[0\]\.url: required$/m);
    assert.match(error.message, /^config: log\.level: expected one of: fatal, error/m);
    assert.match(error.message, /^config: bogus: unknown key$/m);
    assert.ok(!error.message.includes('hunter2-secret'));
    assert.ok(!error.message.includes('short'));
  });

  test('a wrong type names the key and the expected type', () => {
    const error = problemsOf(() => loadConfig({ text: 'push: {budgetMs: soon}', env: {} }));
    assert.deepEqual(error.problems, [{ key: 'push.budgetMs', reason: 'expected an integer' }]);
  });

  test('invalid YAML and an unreadable file are reported', () => {
    const yaml = problemsOf(() => loadConfig({ text: 'http: [', env: {} }));
    assert.match(yaml.message, /^config: file:1:\d+: invalid YAML: /);
    // One line, with the line and the column of the first error (not one per follow-up).
    const dir = mkdtempSync(join(tmpdir(), 'sb-yaml-'));
    const file = join(dir, 'sb.yaml');
    writeFileSync(file, 'http:\n  listen: 127.0.0.1:8080\n   docs: true\n');
    const bad = problemsOf(() => loadConfig({ file, env: {} }));
    assert.equal(bad.problems.length, 1);
    assert.match(
      bad.message,
      new RegExp(
        `^config: ${file.replaceAll('.', '\\.')}:2:11: invalid YAML: [^\\n]+ \\([A-Z_]+\\)$`,
      ),
    );
    writeFileSync(file, 'log:\n  level: info\nlog:\n  level: debug\n');
    assert.match(
      problemsOf(() => loadConfig({ file, env: {} })).message,
      /:3:1: invalid YAML: Map keys must be unique \(DUPLICATE_KEY\)$/,
    );
    rmSync(dir, { recursive: true });
    const missing = problemsOf(() => loadConfig({ file: '/nonexistent/sb.yaml', env: {} }));
    assert.match(
      missing.message,
      /^config: \/nonexistent\/sb\.yaml: cannot read the file \(ENOENT\)$/,
    );
  });

  test('a file that is not a mapping is refused', () => {
    const error = problemsOf(() => loadConfig({ text: '- a\n- b\n', env: {} }));
    assert.match(error.message, /expected a mapping of sections/);
  });

  test('reconnectMinMs above reconnectMaxMs is refused', () => {
    const error = problemsOf(() =>
      loadConfig({ text: 'amqp: {reconnectMinMs: 5000, reconnectMaxMs: 100}', env: {} }),
    );
    assert.equal(error.problems[0]?.key, 'amqp.reconnectMinMs');
  });
});

describe('loadConfig: environment and overrides', () => {
  test('SWITCHBOARD_<SECTION>_<KEY> overrides the file, with type conversion', () => {
    const config = loadConfig({
      text: 'http: {listen: "127.0.0.1:9000", bodyLimitBytes: 4096}\namqp: {persistent: true}',
      env: {
        SWITCHBOARD_HTTP_LISTEN: '0.0.0.0:8080',
        SWITCHBOARD_HTTP_BODY_LIMIT_BYTES: '2048',
        SWITCHBOARD_AMQP_PERSISTENT: 'no',
        SWITCHBOARD_PUSH_APNS_KEY_ID: 'ABC123',
        SWITCHBOARD_JENKINS_WINDOW_WEEKDAYS: '1,2,3,4,5',
        UNRELATED: 'x',
      },
    });
    assert.equal(config.http.listen, '0.0.0.0:8080');
    assert.equal(config.http.bodyLimitBytes, 2048);
    assert.equal(config.amqp.persistent, false);
    assert.equal(config.push.apns.keyId, 'ABC123');
    assert.deepEqual(config.jenkins.window.weekdays, [1, 2, 3, 4, 5]);
  });

  test('lists from the environment: comma/space separated, shorthands, or JSON', () => {
    const config = loadConfig({
      env: {
        SWITCHBOARD_AMI_SERVERS: 'tcp://a:b@pbx1:5038, tls://a:b@pbx2:5039',
        SWITCHBOARD_AUTH_ALLOW_NETWORKS: '10.0.0.0/8 fd00::/8',
        SWITCHBOARD_AUTH_TOKENS: '0123456789abcdef0123',
        SWITCHBOARD_AUTH_USERS: 'nagios:long-password',
        SWITCHBOARD_WEBHOOKS_ENDPOINTS: '[{"url": "https://h.example/x", "maxRetries": 1}]',
        SWITCHBOARD_CALLOUT_HEAD: '{"7": {"en": "Seven"}}',
      },
    });
    assert.deepEqual(
      config.ami.servers.map((s) => s.url),
      ['tcp://a:b@pbx1:5038', 'tls://a:b@pbx2:5039'],
    );
    assert.deepEqual(config.auth.allowNetworks, ['10.0.0.0/8', 'fd00::/8']);
    assert.equal(config.auth.tokens[0]?.token, '0123456789abcdef0123');
    assert.deepEqual(config.auth.users[0], {
      username: 'nagios',
      password: 'long-password',
      modules: [],
    });
    assert.equal(config.webhooks.endpoints[0]?.maxRetries, 1);
    assert.deepEqual(config.webhooks.endpoints[0]?.events, ['#']);
    assert.deepEqual(config.callout.head, { '7': { en: 'Seven' } });
  });

  test('an invalid env value names the key and the variable', () => {
    const error = problemsOf(() =>
      loadConfig({ env: { SWITCHBOARD_AMQP_URL: 'http://nope', SWITCHBOARD_LOG_LEVEL: 'x' } }),
    );
    assert.match(
      error.message,
      /^config: amqp\.url \(from SWITCHBOARD_AMQP_URL\): expected a URL \(amqp:\/\/ or amqps:\/\/\)/m,
    );
    assert.match(error.message, /^config: log\.level \(from SWITCHBOARD_LOG_LEVEL\)/m);
  });

  test('a misspelt variable of a known section is an error; others are ignored', () => {
    const error = problemsOf(() => loadConfig({ env: { SWITCHBOARD_HTTP_LISTN: 'x' } }));
    assert.deepEqual(error.problems, [
      { key: 'SWITCHBOARD_HTTP_LISTN', reason: 'unknown environment variable' },
    ]);
    assert.doesNotThrow(() => loadConfig({ env: { SWITCHBOARD_SOMETHING_ELSE: 'x' } }));
  });

  test('SWITCHBOARD_CONFIG names the file when none is given', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-config-'));
    try {
      const file = join(dir, 'sb.yaml');
      writeFileSync(file, 'instance: {name: from-file}\n');
      assert.equal(loadConfig({ env: { SWITCHBOARD_CONFIG: file } }).instance.name, 'from-file');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('CLI overrides win over env and file', () => {
    const config = loadConfig({
      text: 'http: {listen: "127.0.0.1:1"}\nami: {servers: [{url: "tcp://a:b@file:5038"}]}',
      env: {
        SWITCHBOARD_HTTP_LISTEN: '127.0.0.1:2',
        SWITCHBOARD_AMQP_URL: 'amqp://env',
        SWITCHBOARD_DATABASE_URL: '/tmp/env.db',
      },
      overrides: {
        listen: '127.0.0.1:3',
        ami: ['tcp://a:b@flag1:5038', 'tcp://a:b@flag2:5038'],
        amqp: 'amqp://flag',
        database: 'postgres://postgres@127.0.0.1/test',
        redis: 'redis://127.0.0.1:6379',
      },
    });
    assert.equal(config.http.listen, '127.0.0.1:3');
    assert.deepEqual(
      config.ami.servers.map((s) => s.name),
      ['flag1:5038', 'flag2:5038'],
    );
    assert.equal(config.amqp.url, 'amqp://flag');
    assert.equal(config.database.url, 'postgres://postgres@127.0.0.1/test');
    assert.equal(config.redis.url, 'redis://127.0.0.1:6379');
  });

  test('an invalid override names the flag', () => {
    const error = problemsOf(() => loadConfig({ env: {}, overrides: { amqp: 'nope' } }));
    assert.match(error.message, /^config: amqp\.url \(from --amqp\): expected a URL/m);
  });

  test('env names follow SWITCHBOARD_<SECTION>_<KEY> with camelCase split', () => {
    const names = configEnvSettings().map((s) => s.name);
    assert.ok(names.includes('SWITCHBOARD_HTTP_LISTEN'));
    assert.ok(names.includes('SWITCHBOARD_AMI_SERVERS'));
    assert.ok(names.includes('SWITCHBOARD_PUSH_ACCOUNT_API_CACHE_TTL_S'));
    assert.equal(new Set(names).size, names.length, 'env names are unique');
  });
});

describe('redactConfig', () => {
  test('no secret survives redaction', () => {
    const secrets = [
      'amipass-1x',
      'amqppass-2x',
      'dbpass-3x',
      'redispass-4x',
      'tokenvalue-5x-0123456789',
      'basicpass-6x',
      'hooksecret-7x',
      'twiliotoken-8x',
      'jenkinstoken-9x',
      'apnspass-10x',
      'voicerss-11x',
      'simsecret-12x',
      'pushuserpass-13x',
      'querytoken-14x',
    ];
    const config = loadConfig({
      text: `
ami: {servers: [{url: "tcp://admin:${secrets[0]}@pbx:5038"}]}
amqp: {url: "amqp://guest:${secrets[1]}@broker/"}
database: {url: "postgres://app:${secrets[2]}@db/app"}
redis: {url: "redis://:${secrets[3]}@cache:6379/0"}
auth:
  tokens: [{name: ci, token: "${secrets[4]}"}]
  users: [{username: u, password: "${secrets[5]}"}]
webhooks: {endpoints: [{url: "https://h.example/hook?token=${secrets[13]}", secret: "${secrets[6]}"}]}
callout: {twilio: {authToken: "${secrets[7]}"}}
jenkins: {token: "${secrets[8]}"}
push:
  apns: {certPassphrase: "${secrets[9]}"}
  users: [{username: a, password: "${secrets[12]}"}]
tts: {voicerss: {apiKey: "${secrets[10]}"}}
simulator: {secret: "${secrets[11]}"}
`,
      env: {},
    });
    const plain = JSON.stringify(config);
    for (const secret of secrets) assert.ok(plain.includes(secret), `fixture has ${secret}`);
    const redacted = JSON.stringify(redactConfig(config));
    for (const secret of secrets) assert.ok(!redacted.includes(secret), `${secret} leaked`);
    const r = redactConfig(config);
    assert.equal(r.ami.servers[0]?.url, `tcp://admin:${REDACTED}@pbx:5038`);
    assert.equal(r.auth.tokens[0]?.name, 'ci');
    assert.equal(r.database.url, `postgres://app:${REDACTED}@db/app`);
    assert.equal(r.jenkins.user, '');
    // the original is untouched
    assert.equal(config.auth.users[0]?.password, secrets[5]);
  });

  test('redactUrl keeps non-secret URLs as they are', () => {
    assert.equal(redactUrl('tcp://pbx:5038'), 'tcp://pbx:5038');
    assert.equal(redactUrl('./data/switchboard.db'), './data/switchboard.db');
    assert.equal(redactUrl('amqp://u:p@h/'), `amqp://u:${REDACTED}@h/`);
  });
});

describe('removed keys and defaults defined once', () => {
  test('each removed key is refused with why and what to do, not as an unknown key', () => {
    const text = [
      'webhooks: {signatureHeader: X-Hub-Signature}',
      'amqp: {confirm: false}',
      'tts: {sampleRateHz: 16000}',
      '',
    ].join('\n');
    const error = problemsOf(() => loadConfig({ text, env: {} }));
    assert.deepEqual(error.problems.map((p) => p.key).sort(), [
      'amqp.confirm',
      'tts.sampleRateHz',
      'webhooks.signatureHeader',
    ]);
    for (const problem of error.problems) {
      assert.equal(problem.reason, REMOVED_KEYS[problem.key]);
      assert.match(problem.reason, /^removed .*delete the key$/);
    }
  });

  test('the ami.servers[] and amqp defaults are the AMI client and AMQP bus defaults', () => {
    const config = loadConfig({ text: 'ami: {servers: [{url: "tcp://u:p@pbx:5038"}]}', env: {} });
    const server = config.ami.servers[0];
    assert.deepEqual(
      {
        auth: server?.auth,
        pingIntervalMs: server?.pingIntervalMs,
        connectTimeoutMs: server?.connectTimeoutMs,
        actionTimeoutMs: server?.actionTimeoutMs,
        reconnectMinMs: server?.reconnectMinMs,
        reconnectMaxMs: server?.reconnectMaxMs,
      },
      {
        auth: AMI_CLIENT_DEFAULTS.auth,
        pingIntervalMs: AMI_CLIENT_DEFAULTS.pingIntervalMs,
        connectTimeoutMs: AMI_CLIENT_DEFAULTS.connectTimeoutMs,
        actionTimeoutMs: AMI_CLIENT_DEFAULTS.actionTimeoutMs,
        reconnectMinMs: AMI_CLIENT_DEFAULTS.reconnectInitialDelayMs,
        reconnectMaxMs: AMI_CLIENT_DEFAULTS.reconnectMaxDelayMs,
      },
    );
    const { amqp } = config;
    assert.deepEqual(
      [
        amqp.exchange,
        amqp.persistent,
        amqp.bufferSize,
        amqp.amiBufferSize,
        amqp.heartbeatS,
        amqp.reconnectMinMs,
        amqp.reconnectMaxMs,
      ],
      [
        AMQP_BUS_DEFAULTS.exchange,
        AMQP_BUS_DEFAULTS.persistent,
        AMQP_BUS_DEFAULTS.bufferSize,
        AMQP_BUS_DEFAULTS.amiBufferSize,
        AMQP_BUS_DEFAULTS.heartbeatS,
        AMQP_BUS_DEFAULTS.reconnectInitialDelayMs,
        AMQP_BUS_DEFAULTS.reconnectMaxDelayMs,
      ],
    );
  });
});

describe('switchboard.example.yaml', () => {
  const text = readFileSync(EXAMPLE, 'utf8');

  test('validates', () => {
    assert.doesNotThrow(() => loadConfig({ file: EXAMPLE.pathname, env: {} }));
  });

  test('its values equal the schema defaults', () => {
    assert.deepEqual(parse(text), defaultConfig());
  });

  test('documents every key, each with a comment', () => {
    const doc = parseDocument(text);
    for (const setting of configEnvSettings()) {
      assert.ok(doc.hasIn(setting.path), `${setting.path.join('.')} missing from the example`);
    }
    // Every section has a comment line just above it.
    const lines = text.split('\n');
    for (const section of Object.keys(defaultConfig())) {
      const index = lines.indexOf(`${section}:`);
      assert.ok(index > 0, `section ${section}`);
      assert.match(lines[index - 1] ?? '', /^#/, `comment above ${section}`);
    }
  });
});

describe('docs/configuration.md', () => {
  test('says where each section is defined: that file exports the schema ConfigSchema composes', async () => {
    const text = readFileSync(DOCS, 'utf8');
    const table = text.split('### Where each section is defined')[1]?.split('\n\n')[1] ?? '';
    const named = new Set<string>();
    for (const row of table.split('\n').slice(2)) {
      const [sections, file, exports] = row.split('|').slice(1, 4);
      const keys = [...(sections ?? '').matchAll(/`(\w+)`/g)].map((m) => m[1] as string);
      const names = [...(exports ?? '').matchAll(/`(\w+)`/g)].map((m) => m[1] as string);
      const path = /`(src\/[^`]+)`/.exec(file ?? '')?.[1] as string;
      const module = (await import(new URL(`../../${path}`, import.meta.url).href)) as Record<
        string,
        unknown
      >;
      keys.forEach((key, i) => {
        named.add(key);
        const schema = (ConfigSchema.properties as Record<string, unknown>)[key];
        assert.ok(schema !== undefined, `${key} is a section`);
        assert.equal(module[names[i] as string], schema, `${path} exports ${names[i]} = ${key}`);
      });
    }
    assert.deepEqual([...named].sort(), Object.keys(ConfigSchema.properties).sort());
  });

  test('lists every key with its environment variable', () => {
    const text = readFileSync(DOCS, 'utf8');
    for (const setting of configEnvSettings()) {
      assert.ok(text.includes(`\`${setting.path.join('.')}\``), setting.path.join('.'));
      assert.ok(text.includes(`\`${setting.name}\``), setting.name);
    }
  });
});

describe('loadConfig: default file and conf.d overlays', () => {
  test('the default file is read when no file is named, only if it exists; SWITCHBOARD_CONFIG and --config win', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-default-'));
    const main = join(dir, 'switchboard.yaml');
    const other = join(dir, 'other.yaml');
    writeFileSync(main, 'instance: {name: from-default}\n');
    writeFileSync(other, 'instance: {name: from-env}\n');
    assert.equal(loadConfig({ defaultFile: main, env: {} }).instance.name, 'from-default');
    assert.equal(
      loadConfig({ defaultFile: join(dir, 'missing.yaml'), env: {} }).instance.name,
      'switchboard',
    );
    assert.equal(
      loadConfig({ defaultFile: main, env: { SWITCHBOARD_CONFIG: other } }).instance.name,
      'from-env',
    );
    assert.equal(loadConfig({ defaultFile: main, file: other, env: {} }).instance.name, 'from-env');
    assert.deepEqual(resolveConfigFiles({ defaultFile: main, env: {} }), {
      main,
      overlays: [],
    });
    rmSync(dir, { recursive: true });
  });

  test('conf.d/*.yaml are merged over the main file in lexical order: mappings merged, lists replaced, null removes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-confd-'));
    const main = join(dir, 'switchboard.yaml');
    mkdirSync(join(dir, 'conf.d'));
    writeFileSync(
      main,
      [
        'http: {listen: 127.0.0.1:9000, docs: false}',
        'log: {level: debug}',
        'auth:',
        '  allowNetworks: [10.0.0.0/8, 192.168.0.0/16]',
        'instance: {name: main}',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'conf.d', '20-later.yaml'),
      'http: {listen: 127.0.0.1:9002}\nlog: {level: null}\n',
    );
    writeFileSync(
      join(dir, 'conf.d', '10-first.yaml'),
      'http: {listen: 127.0.0.1:9001}\nauth: {allowNetworks: [172.16.0.0/12]}\n',
    );
    writeFileSync(join(dir, 'conf.d', 'notes.txt'), 'not: yaml: at all: [');
    writeFileSync(join(dir, 'conf.d', '.hidden.yaml'), 'instance: {name: hidden}\n');
    writeFileSync(join(dir, 'conf.d', '30-x.yml'), 'instance: {name: from-yml}\n');
    const files = resolveConfigFiles({ file: main, env: {} });
    assert.deepEqual(files.overlays, [
      join(dir, 'conf.d', '10-first.yaml'),
      join(dir, 'conf.d', '20-later.yaml'),
      join(dir, 'conf.d', '30-x.yml'),
    ]);
    const config = loadConfig({ file: main, env: {} });
    assert.equal(config.http.listen, '127.0.0.1:9002', 'the last file wins');
    assert.equal(config.http.docs, false, 'mappings are merged: keys of the main file stay');
    assert.deepEqual(config.auth.allowNetworks, ['172.16.0.0/12'], 'lists are replaced');
    assert.equal(config.log.level, 'info', 'null removes the key: back to the default');
    assert.equal(config.instance.name, 'from-yml');
    // Environment and flags still win over every file.
    assert.equal(
      loadConfig({ file: main, env: { SWITCHBOARD_HTTP_LISTEN: '127.0.0.1:9999' } }).http.listen,
      '127.0.0.1:9999',
    );

    // A bad value in an overlay names the file it came from; invalid YAML names file:line:col.
    writeFileSync(join(dir, 'conf.d', '40-bad.yaml'), 'http:\n  listen: nowhere\n');
    writeFileSync(join(dir, 'conf.d', '50-broken.yaml'), 'amqp:\n  url: [\n');
    const error = problemsOf(() => loadConfig({ file: main, env: {} }));
    assert.match(
      error.message,
      new RegExp(
        `^config: ${join(dir, 'conf.d', '50-broken.yaml').replaceAll('.', '\\.')}:\\d+:\\d+: invalid YAML`,
        'm',
      ),
    );
    rmSync(join(dir, 'conf.d', '50-broken.yaml'));
    const sourced = problemsOf(() => loadConfig({ file: main, env: {} }));
    assert.equal(
      sourced.message,
      `config: http.listen (from ${join(dir, 'conf.d', '40-bad.yaml')}): expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)`,
    );
    rmSync(dir, { recursive: true });
  });

  test('webhook names: empty = the URL host (never the path or query), made unique; duplicates refused', () => {
    const config = loadConfig({
      text: [
        'webhooks:',
        '  endpoints:',
        '    - {url: "https://hooks.example.com/services/T0/B0/secret-path?token=abc"}',
        '    - {url: "https://hooks.example.com/other"}',
        '    - {url: "http://10.0.0.5:8443/x"}',
        '    - {url: "http://crm.example/x", name: crm}',
        '',
      ].join('\n'),
      env: {},
    });
    assert.deepEqual(
      config.webhooks.endpoints.map((e) => e.name),
      ['hooks.example.com-0', 'hooks.example.com-1', '10.0.0.5:8443', 'crm'],
    );
    const error = problemsOf(() =>
      loadConfig({
        text: 'webhooks:\n  endpoints:\n    - {url: "http://a/", name: x}\n    - {url: "http://b/", name: x}\n',
        env: {},
      }),
    );
    assert.match(error.message, /webhooks\.endpoints\[1\]\.name: duplicate webhook name/);
  });
});
