/**
 * `dialplan`: prints the routine a PBX admin #includes (dialplan/considerate-callback.conf, shipped in
 * the package) with a usage example, ready to redirect into /etc/asterisk.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Argv } from 'yargs';
import { CliError, EXIT, GlobalArgs, loadPartial, out, packageRoot, run } from './common';

export function dialplanFile(): string {
  return path.join(packageRoot(), 'dialplan', 'considerate-callback.conf');
}

const USAGE = [
  'In extensions.conf:',
  '',
  '  #include considerate-callback.conf',
  '',
  '  [agents]',
  '  ; before: exten => _0X.,1,Dial(PJSIP/${EXTEN}@trunk,30,tT)',
  '  exten => _0X.,1,Gosub(considerate-callback,s,1(PJSIP/${EXTEN}@trunk,${EXTEN},30,tT))',
  '   same => n,Hangup()',
  '',
  'Then: asterisk -rx "dialplan reload"',
];

interface DialplanArgs extends GlobalArgs {
  example?: boolean;
  path?: boolean;
}

function dialplan(argv: DialplanArgs): void {
  const file = dialplanFile();
  if (argv.path) return out(file);
  const config = loadPartial(argv);
  const usage = [...USAGE];
  if (config.ari.app !== 'considerate-callback') {
    usage.push('', `Your ari.app is "${config.ari.app}": add to [globals]:  CC_APP=${config.ari.app}`);
  }
  if (argv.example) return out(usage.join('\n'));
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read the dialplan routine ${file}: ${(err as Error).message}`, EXIT.failure);
  }
  out(
    [
      '; Written by `considerate-callback dialplan`. Save it next to extensions.conf:',
      ';   considerate-callback dialplan > /etc/asterisk/considerate-callback.conf',
      ';',
      ...usage.map((l) => (l ? `; ${l}` : ';')),
      ';',
      text.trimEnd(),
    ].join('\n'),
  );
}

export function dialplanCommand<T>(y: Argv<T>): Argv<T> {
  return y.command(
    'dialplan',
    'Print the dialplan routine to #include in extensions.conf, with a usage example.',
    (c) =>
      c
        .option('example', { type: 'boolean', describe: 'Only the usage example for extensions.conf' })
        .option('path', { type: 'boolean', describe: 'Only the path of the shipped file' })
        .example('$0 dialplan > /etc/asterisk/considerate-callback.conf', 'Install the routine')
        .example('$0 dialplan --example', 'How to call it from your agents\' context'),
    (argv) => run(() => dialplan(argv as unknown as DialplanArgs)),
  );
}
