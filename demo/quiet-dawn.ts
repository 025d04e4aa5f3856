/**
 * Dawn's "artificially reduced" notices, kept out of the demo's output. Dawn prints them
 * itself, from native code straight to file descriptor 2, when it first enumerates the
 * Vulkan devices (requestAdapter): PhysicalDeviceBase::Initialize normalises the driver's
 * limits (NormalizeLimits in Dawn's Limits.cpp) and warns for every one above what Dawn
 * supports. lavapipe reports 1,000,000 dynamic uniform and storage buffers per pipeline
 * layout, Dawn caps both at 16, and no request (limits, features, feature level,
 * powerPreference) avoids it: it happens before the request is looked at. JavaScript
 * cannot intercept a native write to fd 2, so the demo runs itself as a child process and
 * passes its stderr on without exactly those two lines.
 */
import { spawn } from 'node:child_process';

/** The two notices, as Dawn words them. */
export const DAWN_LIMIT_NOTICE = /^Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/;

const CHILD = 'WGTORCH_DEMO_FILTERED';

/**
 * In the parent: runs this script again as a child with its stderr filtered, and resolves
 * with the child's exit code. In the child (or where no adapter is requested): null.
 */
export function rerunWithQuietDawn(needsAdapter: boolean): Promise<number> | null {
  if (process.env[CHILD] === '1' || !needsAdapter) return null;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      stdio: ['inherit', 'inherit', 'pipe'],
      env: { ...process.env, [CHILD]: '1' },
    });
    let pending = '';
    const pass = (line: string) => {
      if (!DAWN_LIMIT_NOTICE.test(line)) process.stderr.write(`${line}\n`);
    };
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop()!;
      lines.forEach(pass);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (pending) process.stderr.write(pending);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}
