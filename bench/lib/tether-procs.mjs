// Finds the processes of a real Tether session under an orchestrator process.
import fs from 'node:fs';
import { processTree } from './orchestrator-proc.mjs';

const cmdline = (pid) => { try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '); } catch { return ''; } };

/** { orchestrator, worker, jupyter, kernel } pids (null when not found). */
export function sessionPids(orchestratorPid) {
  const out = { orchestrator: orchestratorPid, worker: null, jupyter: null, kernel: null };
  for (const pid of processTree(orchestratorPid).slice(1)) {
    const c = cmdline(pid);
    if (c.includes('worker/dist/main.js')) out.worker ??= pid;
    else if (c.includes('ipykernel')) out.kernel ??= pid;
    else if (c.includes('jupyter')) out.jupyter ??= pid;
  }
  return out;
}
