/**
 * The configuration schema: every key with its type, default, environment override and a sentence of
 * documentation. The loader validates against it (a wrong key, type or value is refused with a
 * message naming the key), `config check` prints it, and the README's table is written from it.
 */

export type FieldType = 'string' | 'secret' | 'url' | 'integer' | 'duration' | 'boolean' | 'stringList' | 'json';

export interface Field {
  type: FieldType;
  /** Undefined means required. */
  default?: unknown;
  doc: string;
  env?: string;
  enum?: readonly string[];
  min?: number;
  max?: number;
  /** For `json` fields: checks the value and returns an error message or undefined. */
  check?: (value: unknown) => string | undefined;
}

export const schema = {
  'ari.url': { type: 'url', default: 'http://127.0.0.1:8088', env: 'CC_ARI_URL', doc: 'Base URL of Asterisk\'s HTTP server (ARI lives under /ari).' },
  'ari.username': { type: 'string', default: 'considerate', env: 'CC_ARI_USERNAME', doc: 'ARI user from ari.conf.' },
  'ari.password': { type: 'secret', env: 'CC_ARI_PASSWORD', doc: 'ARI password from ari.conf. Required; never logged.' },
  'ari.app': { type: 'string', default: 'considerate-callback', env: 'CC_ARI_APP', doc: 'Stasis application name; must match the dialplan\'s Stasis() call.' },
  'ari.reconnectMax': { type: 'duration', default: '10s', doc: 'Longest pause between reconnection attempts to ARI (there is no retry limit).' },
  'store.path': { type: 'string', default: './data/callbacks.db', env: 'CC_STORE_PATH', doc: 'SQLite file holding requests and their history.' },
  'log.level': { type: 'string', default: 'info', env: 'CC_LOG_LEVEL', enum: ['error', 'warn', 'info', 'debug'], doc: 'Least severe level written.' },
  'log.format': { type: 'string', default: 'auto', env: 'CC_LOG_FORMAT', enum: ['auto', 'json', 'pretty'], doc: 'auto: readable lines on a terminal, JSON lines otherwise.' },
  'offer.keyTimeout': { type: 'duration', default: '6s', doc: 'How long to wait for # after the offer prompt has finished.' },
  'offer.closingTimeout': { type: 'duration', default: '15s', doc: 'Longest a confirmation or goodbye prompt may play before the call is ended.' },
  'offer.maxPendingPerAgent': { type: 'integer', default: 10, min: 1, max: 1000, doc: 'Pending callbacks one agent may have; the offer says so politely when full.' },
  'offer.languages': { type: 'stringList', default: ['en', 'de'], doc: 'Languages prompts exist for; a channel in another language hears offer.defaultLanguage.' },
  'offer.defaultLanguage': { type: 'string', default: 'en', doc: 'Prompt language when the channel\'s language has no prompts.' },
  'prompts.offer': { type: 'string', default: 'sound:cc-offer', doc: 'ARI media URI of "The line is busy. Press hash to be connected when the line is free."' },
  'prompts.confirm': { type: 'string', default: 'sound:cc-confirm', doc: 'Played after the request is stored.' },
  'prompts.goodbye': { type: 'string', default: 'sound:cc-goodbye', doc: 'Played when no callback is scheduled (other key or no key).' },
  'prompts.full': { type: 'string', default: 'sound:cc-full', doc: 'Played when the agent already has offer.maxPendingPerAgent callbacks.' },
  'prompts.error': { type: 'string', default: 'sound:cc-goodbye', doc: 'Played when the request could not be stored.' },
  'numbers.minDigits': { type: 'integer', default: 2, min: 1, max: 30, doc: 'Fewest digits of a prospect number.' },
  'numbers.maxDigits': { type: 'integer', default: 20, min: 1, max: 30, doc: 'Most digits of a prospect number.' },
} as const satisfies Record<string, Field>;

export type ConfigKey = keyof typeof schema;
