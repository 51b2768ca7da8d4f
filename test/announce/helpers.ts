// Helpers of the announce and jenkins tests: audio made with sox, a service with the announce
// module connected to the PBX simulator (or writing call files), HTTP helpers, databases.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { type AnnounceServiceModule, announceServiceModule } from '../../src/announce/index.ts';
import type { Config } from '../../src/config/schema.ts';
import type { ServiceModule } from '../../src/serve/module.ts';
import { createService, type Service } from '../../src/serve/service.ts';
import { type Simulator, startSimulator } from '../../src/sim/index.ts';
import { openDatabase } from '../../src/store/db.ts';
import { testConfig } from '../serve/helpers.ts';
import { tempDir as makeTempDir } from '../support/net.ts';

export const PG_URL =
  process.env.SWITCHBOARD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A fresh temporary directory (`sb-announce-…` unless `prefix` says otherwise). */
export function tempDir(prefix = 'sb-announce-'): string {
  return makeTempDir(prefix);
}

/** A 1 s 440 Hz sine in `format` (mp3, ogg, flac, wav) made with sox, stereo 44.1 kHz. */
export function sine(dir: string, format: string, seconds = 1): string {
  const file = join(dir, `sine-${format}-${seconds}.${format}`);
  execFileSync('sox', [
    '-n',
    '-r',
    '44100',
    '-c',
    '2',
    file,
    'synth',
    String(seconds),
    'sine',
    '440',
  ]);
  return file;
}

/** `soxi` facts of a file: rate, channels, bits, duration (s). */
export function soxi(file: string): {
  rate: number;
  channels: number;
  bits: number;
  durationS: number;
} {
  const run = (flag: string) => execFileSync('soxi', [flag, file], { encoding: 'utf8' }).trim();
  return {
    rate: Number(run('-r')),
    channels: Number(run('-c')),
    bits: Number(run('-b')),
    durationS: Number(run('-D')),
  };
}

/** A simulator whose ringer answers after 100 ms and runs the announce context. */
export async function startRingerSim(): Promise<Simulator> {
  return startSimulator({
    scripts: { '*': { outcome: 'answer', answerAfterMs: 100, hangupAfterMs: 5000 } },
    dialplan: {
      'switchboard-announce': {
        playback: 'announcement',
        playbackMs: 200,
        read: '',
        userEvent: { name: 'SwitchboardPlayed', fields: { Status: 'SUCCESS' } },
      },
    },
  });
}

/** A running service with the announce module (and `extra` modules). */
export interface AnnounceServer {
  service: Service;
  module: AnnounceServiceModule;
  url: string;
  config: Config;
  close(): Promise<void>;
}

/** The YAML of an announce section for tests (fast ring time and gap). */
export function announceYaml(dir: string, extra = ''): string {
  return `announce:
  soundsDir: ${join(dir, 'sounds')}
  spoolDir: ${join(dir, 'spool', 'outgoing')}
  dialString: PJSIP/{extension}
  extension: '42300'
  allowedExtensions: ['_423XX', '_5XX']
  ringTimeS: 2
  gapS: 1
  leadingSilenceMs: 500
  defaultLeadingSilenceMs: 500
  uploadLimitBytes: 1000000
  textLimitChars: 300
  maxRetries: 1
  retryTimeS: 1
  callerId: Switchboard
${extra}`;
}

/** Starts `serve` with the announce module (and `extra` modules) on a free port. */
export async function startAnnounceServer(options: {
  ami?: string[];
  yaml: string;
  database?: string;
  schema?: string;
  extra?: (config: Config) => ServiceModule[];
  mutate?: (config: Config) => void;
}): Promise<AnnounceServer> {
  const config = testConfig({ ...(options.ami ? { ami: options.ami } : {}) }, options.yaml);
  if (options.database) config.database.url = options.database;
  config.push.enabled = false;
  options.mutate?.(config);
  const module = announceServiceModule({ pollMs: 100 });
  const service = createService({
    config,
    modules: [module, ...(options.extra?.(config) ?? [])],
    ...(options.schema ? { database: { schema: options.schema } } : {}),
    ami: { pingIntervalMs: 0 },
  });
  const address = await service.start();
  return { service, module, url: address.url, config, close: () => service.stop() };
}

/** Posts a multipart form (`audio` from a file when given). */
export async function postMultipart(
  url: string,
  fields: Record<string, string>,
  file?: { name: string; path?: string; content?: Buffer },
): Promise<{ status: number; body: Record<string, unknown> }> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  if (file) {
    const content = file.content ?? readFileSync(file.path as string);
    form.append('audio', new Blob([content]), file.name);
  }
  const response = await fetch(url, { method: 'POST', body: form });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Posts a form-encoded body. */
export async function postForm(
  url: string,
  fields: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { method: 'POST', body: new URLSearchParams(fields) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

export interface ApiMessage {
  id: string;
  description: string;
  start: string;
  extension: string;
  status?: string;
  outcome?: string;
}

export async function listMessages(base: string, all = false): Promise<ApiMessage[]> {
  const response = await fetch(`${base}/messages${all ? '?all=1' : ''}`);
  const body = (await response.json()) as { messages: ApiMessage[] };
  return body.messages;
}

export { until } from '../support/until.ts';

/** Drops a PostgreSQL test schema. */
export async function dropSchema(schema: string): Promise<void> {
  const db = await openDatabase(PG_URL);
  await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(db.db);
  await db.close();
}

/** `YYYY-MM-DDTHH:MM:SS` local time of `ms`. */
export function localStart(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/**
 * Seconds of silence at the start of a 16-bit PCM WAV (first sample with |x| > 64, as the
 * converted announcement files: 8 kHz mono).
 */
export function leadingSilenceS(file: string): number {
  const wav = readFileSync(file);
  let offset = 12;
  let rate = 8000;
  let channels = 1;
  while (offset + 8 <= wav.length) {
    const id = wav.toString('latin1', offset, offset + 4);
    const size = wav.readUInt32LE(offset + 4);
    if (id === 'fmt ') {
      channels = wav.readUInt16LE(offset + 10);
      rate = wav.readUInt32LE(offset + 12);
    } else if (id === 'data') {
      const start = offset + 8;
      const end = Math.min(wav.length, start + size);
      for (let i = start; i + 1 < end; i += 2) {
        if (Math.abs(wav.readInt16LE(i)) > 64) return (i - start) / 2 / channels / rate;
      }
      return (end - start) / 2 / channels / rate;
    }
    offset += 8 + size + (size % 2);
  }
  throw new Error(`${file}: no data chunk`);
}

/** Where the original Gong is mirrored (git dir), for the tests that read its files. */
export const XGONG_GIT_DIR =
  process.env.SWITCHBOARD_XGONG_GIT_DIR ?? '/work/.mirror/wazo-platform+xgong/repo';

/** A file of the original Gong (`git show HEAD:<path>`), or undefined when not mirrored. */
export function xgongFile(path: string): string | undefined {
  try {
    return execFileSync('git', ['--git-dir', XGONG_GIT_DIR, 'show', `HEAD:${path}`], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return undefined;
  }
}

/**
 * Gong's dialplan contract, what its `[xgong]` context (`etc/asterisk/extensions_extra.d/
 * xgong.conf`) needs from a call file: the context, its extension (priority 1), the channel
 * variable it plays, and the file it removes afterwards through `System()` (a shell).
 * Read from the mirrored original when available, else the values it has (context `xgong`,
 * `s`, `Playback(${AUDIO_FILE})`, `System(rm ${AUDIO_FILE}.wav)`).
 */
export function gongDialplanContract(): {
  source: 'mirror' | 'known';
  context: string;
  exten: string;
  variable: string;
  removes: string;
} {
  const conf = xgongFile('xgong/etc/asterisk/extensions_extra.d/xgong.conf');
  if (conf === undefined) {
    return {
      source: 'known',
      context: 'xgong',
      exten: 's',
      variable: 'AUDIO_FILE',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a dialplan variable
      removes: '${AUDIO_FILE}.wav',
    };
  }
  const context = /^\[([^\]]+)\]/m.exec(conf)?.[1];
  const exten = /^exten\s*=>\s*([^,]+),1,/m.exec(conf)?.[1];
  const variable = /Playback\(\$\{([A-Za-z0-9_]+)\}\)/.exec(conf)?.[1];
  const removes = /System\(rm ([^)]+)\)/.exec(conf)?.[1];
  if (!context || !exten || !variable || !removes) throw new Error('xgong.conf: unexpected shape');
  return { source: 'mirror', context, exten, variable, removes };
}

/** Sends raw bytes to `port` and resolves with the raw HTTP answer (the server closes). */
export async function rawHttp(port: number, request: Buffer): Promise<string> {
  const { connect } = await import('node:net');
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      out += chunk;
      // One answer: headers plus Content-Length bytes of body.
      const split = out.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: (\d+)/i.exec(out.slice(0, split));
      if (split >= 0 && length && Buffer.byteLength(out.slice(split + 4)) >= Number(length[1])) {
        socket.end();
        resolve(out);
      }
    });
    socket.on('error', reject);
    socket.on('end', () => resolve(out));
    socket.write(request);
  });
}
