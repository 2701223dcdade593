/**
 * Which real servers the suites can reach. In CI (`CI=true`) an unreachable server is a failure,
 * never a silent skip; outside CI a suite without its server skips with one loud line.
 */
import net from 'node:net';

export const isCI = process.env.CI === 'true';
export const postgresUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

function portOpen(url: string, defaultPort: number): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname || '127.0.0.1', port: Number(port || defaultPort) });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function probe(name: string, url: string, defaultPort: number): Promise<boolean> {
  const ok = await portOpen(url, defaultPort);
  if (ok) return true;
  if (isCI) throw new Error(`${name} at ${url} is unreachable and CI=true: server suites must not skip`);
  console.warn(`\n!!! ${name} unreachable at ${url}: its suites are SKIPPED (outside CI only) !!!\n`);
  return false;
}

export const hasPostgres = await probe('PostgreSQL', postgresUrl, 5432);
export const hasRedis = await probe('Redis', redisUrl, 6379);
