/**
 * ari-client's swagger-client (2.0.x) defines a global `log` that writes
 * "This API is using a deprecated version of Swagger!" with console.log on every connection: into the
 * service's log stream (not JSON), every test log and the demo's timeline. Importing this module loads
 * ari-client and silences that function; swagger-client looks the global up at each call.
 */
import 'ari-client';

const g = globalThis as { log?: unknown };
if (typeof g.log === 'function') g.log = () => undefined;
