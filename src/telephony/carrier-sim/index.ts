/** The simulated carrier: a Twilio-compatible server for the demo, tests and benchmarks. */
export { CarrierSim, createCarrierSim, runCarrierSim, type RunCarrierSimOptions } from './server.ts';
export {
  CarrierSimulator,
  TwilioApiError,
  type CarrierSimEvents,
  type CarrierSimOptions,
  type CreateCallInput,
  type ListCallsFilter,
  type SimAccount,
} from './simulator.ts';
export { carrierSimAdminRoutes, carrierSimApiRoutes, carrierSimPlugin, type FaultsRequest } from './routes.ts';
export { Faults, type CreateFailureStatus, type DropCallbacksOptions } from './faults.ts';
export { CallRecord, type AccountStats, type CallbackLogEntry, type Dial, type LineStats, type RejectedCreate, type SimStats } from './record.ts';
export { DEFAULT_SCRIPT, type CallOutcome, type CallPlan, type CallScript, type NumberBehaviour, type ScriptChange } from './script.ts';
export type { SimCallView } from './sim-call.ts';
export { newSid } from './twilio-shapes.ts';
