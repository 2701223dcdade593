#!/usr/bin/env node
// The benchmark's baseline worker process (see baseline-worker.ts), through tsx as bin/ocq.js is.
import { register } from 'tsx/esm/api';

register();
await import('./baseline-worker.ts');
