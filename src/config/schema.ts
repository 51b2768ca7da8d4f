/**
 * The schema of Switchboard's one configuration file (YAML), written with TypeBox.
 *
 * Each module defines its own section, schema and defaults once, in its folder
 * (`src/callout/config.ts` exports `CalloutSection`, `src/push/config.ts` `PushSection`, ...);
 * {@link ConfigSchema} composes them, and this module re-exports them. Every key
 * has a default, so an empty file is a valid configuration (the embedded default: SQLite file
 * `./data/switchboard.db`, in-process bus, HTTP on 127.0.0.1:8080, no Asterisk).
 *
 * TypeScript types are derived with `Static<>`; never repeat them by hand.
 * Custom string formats (`switchboard-*`) are registered in TypeBox's format registry by
 * `./section.ts`; {@link FORMAT_MESSAGES} holds the message each one reports.
 *
 * The commented reference of every key is `switchboard.example.yaml` at the repository root;
 * `docs/configuration.md` explains the environment-variable rule.
 */
import Type, { type Static } from 'typebox';
import { AmiSection } from '../ami/config.ts';
import { AnnounceSection } from '../announce/config.ts';
import { AmqpSection } from '../bus/config.ts';
import { CalloutSection } from '../callout/config.ts';
import { AuthSection, HttpSection } from '../http/config.ts';
import { JenkinsSection } from '../jenkins/config.ts';
import { TtsSection } from '../media/tts/config.ts';
import { PushSection } from '../push/config.ts';
import { SimulatorSection } from '../sim/config.ts';
import { WebhooksSection } from '../sinks/config.ts';
import { DatabaseSection, RedisSection, RetentionSection } from '../store/config.ts';
import { formatted, oneOf, section, str } from './section.ts';

export { AmiSection, AmiServer, type AmiServerConfig } from '../ami/config.ts';
export { type AnnounceConfig, AnnounceSection } from '../announce/config.ts';
export { AmqpSection } from '../bus/config.ts';
export { type CalloutConfig, CalloutSection } from '../callout/config.ts';
export { ApiToken, type AuthConfig, AuthSection, BasicUser, HttpSection } from '../http/config.ts';
export { type JenkinsConfig, JenkinsSection } from '../jenkins/config.ts';
export { type TtsConfig, TtsSection } from '../media/tts/config.ts';
export {
  PushApp,
  type PushAppConfig,
  type PushConfig,
  PushPlatform,
  PushSection,
} from '../push/config.ts';
export {
  type SimulatorConfig,
  SimulatorScript,
  type SimulatorScriptConfig,
  SimulatorSection,
} from '../sim/config.ts';
export { WebhookEndpoint, type WebhookEndpointConfig, WebhooksSection } from '../sinks/config.ts';
export {
  DatabaseSection,
  RedisSection,
  type RetentionConfig,
  RetentionSection,
} from '../store/config.ts';
export { FORMAT_MESSAGES } from './section.ts';

/** `instance`: identity of this Switchboard on the bus. */
export const InstanceSection = section(
  {
    uuid: formatted(
      'switchboard-uuid',
      '',
      'origin_uuid of bus messages; empty = derived from the host name and instance name',
      true,
    ),
    name: str('switchboard', 'instance name, shown in logs and service_registered_event'),
  },
  'identity of this instance',
);

/** Log levels accepted by pino. */
export const LogLevel = oneOf(
  ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
  'info',
  'minimum level logged',
);

/** How logs are written: one readable line per entry, JSON lines, or pretty on a terminal only. */
export const LogFormat = oneOf(
  ['auto', 'pretty', 'json'],
  'auto',
  'auto = pretty on a terminal, JSON lines otherwise (journald, files, pipes)',
);

/** `log`: the process logs (pino; stdout, or stderr with `serve --print-events`). */
export const LogSection = section({ level: LogLevel, format: LogFormat }, 'logging');

/** The whole configuration file. */
export const ConfigSchema = Type.Object(
  {
    instance: InstanceSection,
    http: HttpSection,
    log: LogSection,
    ami: AmiSection,
    amqp: AmqpSection,
    database: DatabaseSection,
    redis: RedisSection,
    webhooks: WebhooksSection,
    simulator: SimulatorSection,
    auth: AuthSection,
    callout: CalloutSection,
    announce: AnnounceSection,
    jenkins: JenkinsSection,
    push: PushSection,
    tts: TtsSection,
    retention: RetentionSection,
  },
  { additionalProperties: false, default: {} },
);

/** The validated configuration (every key present, defaults applied). */
export type Config = Static<typeof ConfigSchema>;
