import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';

/**
 * Writes the workflow bundle ahead of time (the image build does), so that a worker
 * started with DRAFTSMAN_WORKFLOW_BUNDLE skips webpack at start-up.
 * Usage: node dist/worker/bundle.js [OUT] (default dist/workflow-bundle.js).
 */
async function main(): Promise<void> {
  const out = path.resolve(process.argv[2] ?? path.join(__dirname, '..', 'workflow-bundle.js'));
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    logger: new DefaultLogger('WARN'),
  });
  fs.writeFileSync(out, code);
  console.log(`workflow bundle written to ${out} (${code.length} bytes)`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
