/**
 * The QEMU tests' common start: find a QEMU fit for the bridge and build the test VM's image, or say why the file
 * skips (QEMU missing or too old, the test VM's packages missing: CI installs them). One place, so every QEMU test
 * skips for the same reasons with the same message.
 */
import { buildTestVm, findQemu, qemuUnfitReason, type TestVmImage } from '../src/qemu/index.js';

export interface QemuTestVm {
  /** Set when the file must skip; printed once as `[name] skipped: reason`. */
  skipReason: string | undefined;
  image: TestVmImage | undefined;
}

export async function prepareQemuTestVm(name: string): Promise<QemuTestVm> {
  let skipReason = qemuUnfitReason(await findQemu());
  let image: TestVmImage | undefined;
  if (!skipReason) {
    try {
      image = await buildTestVm();
    } catch (err) {
      skipReason = `cannot build the test VM: ${(err as Error).message}`;
    }
  }
  if (skipReason) console.warn(`[${name}] skipped: ${skipReason}`);
  return { skipReason, image };
}
