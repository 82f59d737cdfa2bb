import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores: e2e files start servers and databases; keep parallelism modest.
    maxWorkers: 2,
    pool: 'forks',
  },
});
