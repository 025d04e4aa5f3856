import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // the first dispatch of a new WGSL pipeline compiles it with LLVM (lavapipe): seconds on a cold cache
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // generated kernels must not depend on timings: the autotuner's own tests turn it on
    env: { WGTORCH_AUTOTUNE: '0' },
  },
});
