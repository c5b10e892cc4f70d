/** Worker-thread entry: runs each `SimJob` it is sent and answers with the result (or the error message). */
import { parentPort } from 'node:worker_threads';
import { runJob, type SimJob } from './run.js';

parentPort?.on('message', (job: SimJob) => {
  runJob(job).then(
    (result) => parentPort?.postMessage({ ok: true, result }),
    (err: unknown) =>
      parentPort?.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
