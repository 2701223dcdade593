/**
 * First start of the one-process demo: a demo business, an owner, a token (printed once and kept
 * in `<data>/demo-token`) and 100 demo leads, so a newcomer can start a run with curl at once.
 * Nothing happens when any business exists already.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createBusiness, createToken, createUser } from '../admin/service.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Store } from '../store/database.ts';
import { newId } from '../store/ids.ts';
import { upsertLeads } from '../store/leads.ts';

export const DEMO_LEADS = 100;

export async function ensureDemoData(store: Store, config: Config, logger: Logger): Promise<void> {
  const any = await store.db.selectFrom('businesses').select('id').limit(1).executeTakeFirst();
  if (any) return;
  const business = await createBusiness(store.db, { name: 'Demo business', caller_id: '+972525550100', max_concurrent_calls: 3 });
  const user = await createUser(store.db, { businessId: business.id, email: 'demo@example.com', name: 'Demo owner', role: 'owner' });
  const { token } = await createToken(store.db, { userId: user.id, name: 'demo' });
  // Israeli mobile numbers in a range no one owns; the simulated carrier answers them.
  const leads = Array.from({ length: DEMO_LEADS }, (_, i) => ({
    id: newId(),
    phoneE164: `+97250555${String(i).padStart(4, '0')}`,
    name: `ליד הדגמה ${i + 1}`,
    externalId: `demo-${i + 1}`,
    attributesJson: '{}',
  }));
  await upsertLeads(store.db, business.id, leads);
  fs.mkdirSync(config.dataDir, { recursive: true });
  const tokenFile = path.join(config.dataDir, 'demo-token');
  fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  logger.info({ businessId: business.id, tokenFile }, 'demo business created with 100 leads');
  // Printed once, on purpose, outside the structured log: this is the newcomer's key.
  console.log(`\nDemo API token (also in ${tokenFile}):\n  ${token}\n`);
}
