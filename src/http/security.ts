/**
 * Cross-business access attempts. A tenant route whose scoped look-up found nothing calls
 * {@link reportForeignAccess} and then answers 404, exactly as for a missing id. If the id belongs
 * to another business, the attempt is logged at warn (actor user and business, target type and
 * id, owning business) and appended to the system-level `security_events` table. The caller
 * learns nothing either way: the probe's answer never reaches the response.
 */
import type { FastifyRequest } from 'fastify';
import { NotFoundError } from '../domain/errors.ts';
import { findOwnerOfIdForSecurityLog, insertSecurityEvent, type SecuredTarget } from '../store/security-events.ts';
import type { AppDeps } from './context.ts';

export type { SecuredTarget };

/** The `kind` of a security event written here. */
export const FOREIGN_ACCESS = 'foreign_access';

/** Probes whether `targetId` is another business's and, if so, records the attempt. Never throws. */
export async function reportForeignAccess(deps: AppDeps, request: FastifyRequest, targetType: SecuredTarget, targetId: string): Promise<void> {
  const auth = request.auth;
  const route = `${request.method} ${request.routeOptions.url ?? request.url}`;
  try {
    const owner = await findOwnerOfIdForSecurityLog(deps.store.db, targetType, targetId);
    if (owner === null || owner === auth?.businessId) return;
    request.log.warn(
      {
        security: FOREIGN_ACCESS,
        actor_user_id: auth?.userId ?? null,
        actor_business_id: auth?.businessId ?? null,
        target_type: targetType,
        target_id: targetId,
        owner_business_id: owner,
        route,
      },
      'security: access to another business\'s object refused',
    );
    await insertSecurityEvent(deps.store.db, {
      kind: FOREIGN_ACCESS,
      actorUserId: auth?.userId ?? null,
      actorBusinessId: auth?.businessId ?? null,
      targetType,
      targetId,
      ownerBusinessId: owner,
      route,
    });
  } catch (error) {
    // The 404 must not depend on the security log: record the failure and answer as usual.
    request.log.error({ err: error, target_type: targetType, target_id: targetId }, 'security: could not record a foreign access attempt');
  }
}

/**
 * Returns `found` when the scoped look-up found it; otherwise reports the attempt and throws the
 * same NotFoundError a missing id gets.
 *
 * @example
 * const lead = await notFoundUnlessOwned(deps, request, 'lead', id, await getLead(db, auth.businessId, id));
 */
export async function notFoundUnlessOwned<T>(
  deps: AppDeps,
  request: FastifyRequest,
  targetType: SecuredTarget,
  targetId: string,
  found: T | undefined | null,
): Promise<T> {
  if (found !== undefined && found !== null) return found;
  await reportForeignAccess(deps, request, targetType, targetId);
  throw new NotFoundError(targetType);
}
