/**
 * Settings that leave the PBX or the service open (for `config check` and the start-up log): warnings,
 * not errors — a lab may want them. Pure.
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
  return warnings;
}
