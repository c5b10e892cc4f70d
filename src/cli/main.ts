/**
 * The `livemig` command. Each subcommand lives in its own file and registers itself here; errors are
 * printed as one line that says what went wrong and what to do, with a non-zero exit code.
 */
import { Command, CommanderError } from 'commander';
import { CodecError, LivemigError, UsageError } from '../errors.js';
import { safeLine, safeText } from '../log-safe.js';
import { VERSION } from '../version.js';
import { registerAgent } from './agent.js';
import { registerCerts } from './certs.js';
import { registerCluster } from './cluster.js';
import { registerDemo } from './demo.js';
import { environmentError } from './environment.js';
import { registerEvacuate } from './evacuate.js';
import { EXIT, EXIT_CODES_HELP } from './exit.js';
import { registerExperiment } from './experiment.js';
import { registerGuest } from './guest.js';
import { registerMigrate } from './migrate.js';
import { registerPredict } from './predict.js';
import { registerProfile } from './profile.js';
import { registerQemu } from './qemu.js';
import { registerRun } from './run.js';
import { registerSim } from './sim.js';
import { registerTrace } from './trace.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('livemig')
    .description(
      'Live migration engine and laboratory for virtual machines. Migrate a running guest between hosts ' +
        'over real TCP, see what each optimisation buys (downtime, total time, bytes, CPU, energy), and ' +
        'simulate data centres that consolidate VMs.',
    )
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', EXIT_CODES_HELP)
    // Before the subcommands are added, so they inherit it: their refusals come back to main() as exit code 2.
    .exitOverride();
  registerAgent(program);
  registerCerts(program);
  registerGuest(program);
  registerMigrate(program);
  registerEvacuate(program);
  registerRun(program);
  registerDemo(program);
  registerSim(program);
  registerCluster(program);
  registerPredict(program);
  registerProfile(program);
  registerExperiment(program);
  registerQemu(program);
  registerTrace(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
    // A command that ran but failed (a migration that did not complete) says so through process.exitCode.
    return Number(process.exitCode ?? EXIT.ok);
  } catch (err) {
    // Commander's own refusals (unknown option, bad choice, missing argument) are usage errors too.
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (err instanceof UsageError) {
      process.stderr.write(`livemig: ${safeLine(err.message)}\n`);
      return EXIT.usage;
    }
    if (err instanceof LivemigError) {
      // The message may be an agent's or a peer's (an HTTP error body, an ERROR frame): escaped, one line.
      const code = err instanceof CodecError ? '' : `[${safeText(err.code, 40)}] `;
      process.stderr.write(`livemig: ${code}${safeLine(err.message)}\n`);
      return EXIT.failed;
    }
    const env = environmentError(err);
    if (env) {
      process.stderr.write(`livemig: ${env}\n`);
      return EXIT.failed;
    }
    throw err;
  }
}
