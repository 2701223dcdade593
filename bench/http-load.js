#!/usr/bin/env node
// The HTTP API benchmark's load generator as a process of its own (see http-load.ts).
import { register } from 'tsx/esm/api';

register();
process.env.OCQ_BENCH_LOAD_CHILD = '1';
await import('./http-load.ts');
