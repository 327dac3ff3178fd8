/**
 * The package's entry for embedding (`require('considerate-callback')`): the service, the configuration
 * loader and the logger. The command line (`considerate-callback`, dist/cli/main.js) is the usual way in.
 */
export { Service, type ServiceOptions } from './app/service';
export { loadConfig, resolveConfig, ConfigError, type Config } from './config/load';
export { createLogger, type Logger } from './logging/log';
