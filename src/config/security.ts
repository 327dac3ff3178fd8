/**
 * Settings that leave the PBX or the service open (for `config check` and the start-up log): warnings —
 * a lab may want them — and, for the HTTP listener, the worst combinations, which the service refuses to
 * start with unless http.allowOpen says so ({@link securityRefusals}). Pure.
 */
import { dialPolicyWarnings } from '../core/dial-policy';
import { isLoopback } from './net';
import type { Config } from './schema';

export function securityWarnings(config: Config): string[] {
  const warnings = dialPolicyWarnings(config.dial);
  if (config.agi.enabled && !isLoopback(config.agi.bind)) {
    if (!config.agiDoor.secret) warnings.push(`agi.bind: ${config.agi.bind} is reachable from the network and agi.secret is empty: anyone who can connect may create callback requests`);
    if (config.agiDoor.allowedPeers.length === 0) warnings.push(`agi.allowedPeers: empty while agi.bind is ${config.agi.bind}; list the PBX's address`);
  }
  if (config.webhook.url && !config.webhook.secret) warnings.push('webhook.secret: empty; the CRM cannot tell our events from forged ones');
  if (config.webhook.url.startsWith('http://') && !/^http:\/\/(127\.|localhost|\[::1\])/.test(config.webhook.url)) {
    warnings.push('webhook.url: plain http to another host; names and numbers travel unencrypted');
  }
  if (/^http:\/\//.test(config.ari.url) && !/^http:\/\/(127\.|localhost|\[::1\])/.test(config.ari.url)) {
    warnings.push('ari.url: plain http to another host; the ARI password travels unencrypted (use https or a private network)');
  }
  warnings.push(...httpWarnings(config));
  if (config.http.allowOpen) warnings.push(...securityRefusals({ ...config, http: { ...config.http, allowOpen: false } }).map((r) => `${r} (allowed by http.allowOpen)`));
  return warnings;
}

function httpWarnings(config: Config): string[] {
  const { http, web } = config;
  if (!http.enabled) return [];
  const out: string[] = [];
  const local = isLoopback(http.bind);
  const reached = local ? 'anyone on this host' : `anyone who reaches ${http.bind}:${http.port}`;
  if (!local && http.auth === 'token') {
    out.push(
      `http.bind: ${http.bind} is reachable from the network over plain HTTP: put a TLS reverse proxy in front (README, "Security")` +
        (http.token ? '' : '; http.token is empty, so a new token is made at each start and printed on stderr (set http.token)'),
    );
  }
  if (http.auth === 'none') {
    out.push(`http.auth: none — ${reached} can read the callbacks page (prospect numbers), cancel and snooze callbacks${web.phones ? ', and use the demo phones and their relay to Asterisk' : ''}, without credentials`);
  }
  if (web.phones && !local) out.push(`web.phones: the demo phones (public demo passwords) and their relay to Asterisk's SIP WebSocket are reachable from the network on ${http.bind}:${http.port}`);
  if (http.allowedHosts.includes('*')) out.push('http.allowedHosts: "*" turns the Host check off: a web page whose name is rebound to this address can use the listener with the browser\'s cookie');
  return out;
}

/**
 * The HTTP listener's combinations that leave prospect numbers, state changes or the PBX open to the
 * network without credentials: the service does not start with them unless http.allowOpen is true.
 */
export function securityRefusals(config: Config): string[] {
  const { http, web } = config;
  if (!http.enabled || http.allowOpen || http.auth !== 'none') return [];
  const out: string[] = [];
  if (!isLoopback(http.bind)) out.push(`http.auth none with http.bind ${http.bind}: the page and its API would be open to the network`);
  if (web.phones) out.push('http.auth none with web.phones: the relay to Asterisk would be open without credentials');
  if (http.allowedHosts.includes('*')) out.push('http.auth none with http.allowedHosts "*": any web page the admin opens could read and change the callbacks (DNS rebinding)');
  return out;
}
