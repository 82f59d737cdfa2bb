#!/usr/bin/env node
// The CLI runs the TypeScript sources through tsx's loader, so `npx wxphone`
// works straight after `npm install` with no build step.
import { register } from 'tsx/esm/api';

register();
await import('../app/cli.ts');
