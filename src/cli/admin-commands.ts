/**
 * `ocq admin ...`: businesses, users and tokens from the command line, through the same service
 * as the admin API. With `--json` each command prints one JSON object carrying the new `id`
 * (and, for tokens, the `token`); otherwise a short human line. A token is printed once.
 *
 *   ocq admin business create --name N [--max-concurrent-calls K] [--caller-id +972...] [--json]
 *   ocq admin user create --business ID --email E --role R [--name NAME] [--json]
 *   ocq admin token create --user ID [--name NAME] [--json]
 *   ocq admin token revoke --id TOKEN_ID [--json]
 */
import { InvalidArgumentError, type Command } from 'commander';
import { createBusiness, createToken, createUser, revokeToken } from '../admin/service.ts';
import { ValidationError } from '../domain/errors.ts';
import { isRole, ROLES, type RoleName } from '../domain/roles.ts';
import type { Store } from '../store/database.ts';
import { serializeBusiness, serializeCreatedToken, serializeToken, serializeUser } from '../http/account-schemas.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('must be a whole number');
  return n;
}

function uuid(value: string): string {
  if (!UUID.test(value)) throw new InvalidArgumentError('must be an id (UUID)');
  return value.toLowerCase();
}

function role(value: string): RoleName {
  if (!isRole(value)) throw new InvalidArgumentError(`must be one of ${ROLES.join(', ')}`);
  return value;
}

/** Checks what the database would otherwise reject with a less helpful message. */
function checkBusinessOptions(options: { name: string; maxConcurrentCalls?: number; callerId?: string }): void {
  if (options.name.trim() === '' || options.name.length > 200) {
    throw new ValidationError({ en: '--name: 1 to 200 characters', he: '--name: בין 1 ל-200 תווים' }, { field: 'name' });
  }
  if (options.maxConcurrentCalls !== undefined && (options.maxConcurrentCalls < 1 || options.maxConcurrentCalls > 100)) {
    throw new ValidationError({ en: '--max-concurrent-calls: 1 to 100', he: '--max-concurrent-calls: בין 1 ל-100' }, { field: 'max_concurrent_calls' });
  }
  if (options.callerId !== undefined && !/^\+[1-9][0-9]{6,14}$/.test(options.callerId)) {
    throw new ValidationError({ en: '--caller-id: E.164, e.g. +972501234567', he: '--caller-id: בפורמט E.164, למשל +972501234567' }, { field: 'caller_id' });
  }
}

function print(json: boolean, object: Record<string, unknown>, human: string): void {
  console.log(json ? JSON.stringify(object) : human);
}

/** Adds `admin business|user|token ...` to the program; each command opens (and closes) the store. */
export function registerAdminCommands(program: Command, openStore: () => Promise<Store>): void {
  const withStore = async <T>(work: (store: Store) => Promise<T>): Promise<T> => {
    const store = await openStore();
    try {
      return await work(store);
    } finally {
      await store.close();
    }
  };

  const admin = program.command('admin').description('system administration: businesses, users and API tokens');

  admin
    .command('business')
    .description('businesses')
    .command('create')
    .description('create a business')
    .requiredOption('--name <name>', 'business name')
    .option('--max-concurrent-calls <k>', 'live calls at once (1..100, default 3)', wholeNumber)
    .option('--caller-id <e164>', 'caller id, E.164 (e.g. +972...)')
    .option('--json', 'print one JSON object')
    .action(async (options: { name: string; maxConcurrentCalls?: number; callerId?: string; json?: boolean }) => {
      checkBusinessOptions(options);
      const business = await withStore((store) =>
        createBusiness(store.db, {
          name: options.name.trim(),
          ...(options.maxConcurrentCalls === undefined ? {} : { max_concurrent_calls: options.maxConcurrentCalls }),
          ...(options.callerId === undefined ? {} : { caller_id: options.callerId }),
        }),
      );
      print(!!options.json, serializeBusiness(business), `business ${business.id} created: ${business.name} (max ${business.max_concurrent_calls} concurrent calls)`);
    });

  admin
    .command('user')
    .description('users')
    .command('create')
    .description('create a user in a business')
    .requiredOption('--business <id>', 'business id', uuid)
    .requiredOption('--email <email>', 'email (unique in the business)')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`, role)
    .option('--name <name>', 'display name')
    .option('--json', 'print one JSON object')
    .action(async (options: { business: string; email: string; role: RoleName; name?: string; json?: boolean }) => {
      if (!/^[^@\s]+@[^@\s]+$/.test(options.email) || options.email.length > 254) {
        throw new ValidationError({ en: '--email: not an email address', he: '--email: כתובת דוא"ל לא תקינה' }, { field: 'email' });
      }
      const user = await withStore((store) =>
        createUser(store.db, { businessId: options.business, email: options.email, name: options.name ?? null, role: options.role }),
      );
      print(!!options.json, serializeUser(user), `user ${user.id} created: ${user.email} (${user.role})`);
    });

  const token = admin.command('token').description('API tokens');
  token
    .command('create')
    .description('create an API token for a user; it is printed once')
    .requiredOption('--user <id>', 'user id', uuid)
    .option('--name <name>', 'a label for the token')
    .option('--json', 'print one JSON object')
    .action(async (options: { user: string; name?: string; json?: boolean }) => {
      const created = await withStore((store) => createToken(store.db, { userId: options.user, name: options.name ?? null }));
      print(
        !!options.json,
        serializeCreatedToken(created),
        `token ${created.record.id} created for user ${created.record.user_id}. It is shown only now:\n${created.token}`,
      );
    });
  token
    .command('revoke')
    .description('revoke an API token (idempotent)')
    .requiredOption('--id <id>', 'token id', uuid)
    .option('--json', 'print one JSON object')
    .action(async (options: { id: string; json?: boolean }) => {
      const revoked = await withStore((store) => revokeToken(store.db, { tokenId: options.id }));
      print(!!options.json, serializeToken(revoked), `token ${revoked.id} revoked`);
    });
}
