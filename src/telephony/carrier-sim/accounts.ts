/** The accounts the simulator accepts, and HTTP Basic authentication against them. */
import type { Logger } from '../../logger.ts';

/** An account the simulator accepts, with optional API keys and an optional caller-id allow-list. */
export interface SimAccount {
  accountSid: string;
  authToken: string;
  apiKeys?: Array<{ sid: string; secret: string }>;
  /** When set, only these `From` numbers are valid (others get 21212). */
  callerIds?: string[];
}

const ACCOUNT_SID = /^AC[0-9a-f]{32}$/i;

/** Accounts by SID and API keys by key SID. */
export class AccountRegistry {
  private readonly accounts = new Map<string, SimAccount>();
  private readonly apiKeys = new Map<string, { account: SimAccount; secret: string }>();

  /**
   * @param autoRegister accept any `AC…` SID with any token, registering the pair on first use
   */
  constructor(
    private readonly autoRegister: boolean,
    private readonly log: Logger,
  ) {}

  /** Registers an account (and its API keys). */
  add(account: SimAccount): void {
    this.accounts.set(account.accountSid, account);
    for (const key of account.apiKeys ?? []) this.apiKeys.set(key.sid, { account, secret: key.secret });
  }

  /** The auth token the account's callbacks are signed with. */
  authTokenFor(accountSid: string): string | undefined {
    return this.accounts.get(accountSid)?.authToken;
  }

  /**
   * The account that HTTP Basic credentials (account SID + auth token, or API key SID + secret)
   * stand for, if they are valid for the account in the path; otherwise `null`.
   */
  authenticate(username: string, password: string, pathAccountSid: string): SimAccount | null {
    let account: SimAccount | undefined;
    if (username.startsWith('SK')) {
      const key = this.apiKeys.get(username);
      account = key && key.secret === password ? key.account : undefined;
    } else {
      account = this.accounts.get(username);
      if (!account && this.autoRegister && ACCOUNT_SID.test(username) && password) {
        account = { accountSid: username, authToken: password };
        this.add(account);
        this.log.info({ accountSid: username }, 'account registered on first use');
      }
      if (account && account.authToken !== password) account = undefined;
    }
    return account && account.accountSid === pathAccountSid ? account : null;
  }
}
