/**
 * `livemig sim --against DIR`: the simulator side of a saved `livemig cluster` run, rerun with this simulator
 * (src/cluster/agreement-rerun.ts), printed as the cluster prints it, as JSON, or as docs/cluster.md's Markdown.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NoiseDistribution } from '../cluster/index.js';
import {
  agreementSection,
  agreementText,
  measurementResiduals,
  noiseDistribution,
  noiseMarkdown,
  parseSavedCluster,
  repeatAgreement,
  repeatMarkdown,
  rerunAgreement,
  rerunSetting,
  type SavedCluster,
} from '../cluster/index.js';
import { UsageError } from '../errors.js';
import { medianOf, type SimOptions } from '../sim/index.js';

/** `--sampling`: instant or mean (undefined: the mode's default). */
export function samplingFlag(text: string | undefined): 'instant' | 'mean' | undefined {
  if (text === undefined) return undefined;
  if (text === 'instant' || text === 'mean') return text;
  throw new UsageError(`--sampling: use mean or instant (got "${text}")`, '--sampling');
}

/** `--switch-off`: step or instant (undefined: the mode's default). */
export function switchOffFlag(text: string | undefined): 'instant' | 'step' | undefined {
  if (text === undefined) return undefined;
  if (text === 'instant' || text === 'step') return text;
  throw new UsageError(`--switch-off: use step or instant (got "${text}")`, '--switch-off');
}

async function readRun(dir: string): Promise<SavedCluster> {
  const file = join(dir, 'cluster.json');
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      code
        ? `--against: cannot read ${file} (${code}); give the folder a \`livemig cluster --out DIR\` run wrote`
        : `--against: ${file} is not JSON (${(err as Error).message})`,
      '--against',
    );
  }
  return parseSavedCluster(json, file);
}

/**
 * One saved run: its agreement rerun. Several (repeats of one configuration): each rerun, then the plain simulator
 * against the median of the runs, with their range (src/cluster/agreement-repeat.ts).
 */
export async function simAgainst(
  dirs: string | readonly string[],
  o: {
    sampling?: 'instant' | 'mean';
    switchOff?: 'instant' | 'step';
    json: boolean;
    markdown: boolean;
    /** `--noise N`: N simulator runs under the runs' own measurement noise (agreement-noise.ts). */
    noise?: number;
  },
): Promise<void> {
  const list = typeof dirs === 'string' ? [dirs] : dirs;
  const sim = {
    ...(o.sampling ? { sampling: o.sampling } : {}),
    ...(o.switchOff ? { switchOff: o.switchOff } : {}),
  };
  if (list.length > 1) {
    const runs = [];
    for (const dir of list) {
      const run = await readRun(dir);
      runs.push({ ...run, agreement: (await rerunAgreement(run, sim)).agreement });
    }
    const repeat = repeatAgreement(runs);
    const noise = await noiseOf(runs, o.noise, sim);
    if (o.json)
      process.stdout.write(
        `${JSON.stringify({ repeat, runs: runs.map((r) => r.agreement), ...(noise ? { noise } : {}) }, null, 2)}\n`,
      );
    else {
      process.stdout.write(`${repeatMarkdown(repeat)}\n`);
      if (noise) process.stdout.write(`\n${noiseMarkdown(noise, 'median figures')}\n`);
    }
    return;
  }
  const run = await readRun(list[0]!);
  const { agreement } = await rerunAgreement(run, sim);
  const noise = await noiseOf([run], o.noise, sim);
  if (o.json)
    process.stdout.write(`${JSON.stringify(noise ? { ...agreement, noise } : agreement, null, 2)}\n`);
  else {
    process.stdout.write(`${o.markdown ? agreementSection(run, agreement) : agreementText({ agreement })}\n`);
    if (noise) process.stdout.write(`\n${noiseMarkdown(noise, 'figures')}\n`);
  }
}

/** `--noise N`: the simulator's distribution under the runs' measured − traced differences, the runs' medians in it. */
async function noiseOf(
  runs: readonly SavedCluster[],
  trials: number | undefined,
  sim: Partial<SimOptions>,
): Promise<NoiseDistribution | null> {
  if (!trials) return null;
  const { workload, options } = await rerunSetting(runs[0]!, sim);
  return noiseDistribution(
    workload,
    options,
    measurementResiduals(workload, runs),
    {
      migrations: medianOf(runs.map((r) => r.metrics.migrations)),
      energyKWh: medianOf(runs.map((r) => r.metrics.energyKWh)),
    },
    trials,
  );
}
