/**
 * Role rules, pure. Roles nest: owner ⊇ admin ⊇ agent ⊇ viewer.
 * - owner, admin: everything in their business, including users and tokens;
 * - agent: import leads, create runs, cancel and stop;
 * - viewer: read only.
 * Nobody may grant or manage a role above their own (an admin cannot mint an owner).
 */
export const ROLES = ['owner', 'admin', 'agent', 'viewer'] as const;
export type RoleName = (typeof ROLES)[number];

const rank: Record<RoleName, number> = { viewer: 0, agent: 1, admin: 2, owner: 3 };

export function isRole(value: unknown): value is RoleName {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** True when `role` includes every right of `minimum`. */
export function roleAtLeast(role: RoleName, minimum: RoleName): boolean {
  return rank[role] >= rank[minimum];
}

/** May `actor` create, or manage the tokens of, a user holding `target`? */
export function mayManageRole(actor: RoleName, target: RoleName): boolean {
  return roleAtLeast(actor, 'admin') && rank[actor] >= rank[target];
}
