/**
 * The default call handler: the TwiML the provider fetches when a lead answers, for businesses
 * that have not set their own `call_handler_url` (their AI agent, an IVR...).
 */
import type { FastifyPluginAsync } from 'fastify';

const DEFAULT_TWIML =
  '<?xml version="1.0" encoding="UTF-8"?><Response><Say language="he-IL">שלום, זו שיחה מהעסק. נחזור אליך בהקדם.</Say><Hangup/></Response>';

export const answerRoute: FastifyPluginAsync = async (app) => {
  // Twilio POSTs a form; the body is not needed here, only accepted.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  const reply = async (_request: unknown, response: import('fastify').FastifyReply) => response.type('text/xml').send(DEFAULT_TWIML);
  app.post('/webhooks/twilio/answer', { schema: { hide: true } }, reply);
  app.get('/webhooks/twilio/answer', { schema: { hide: true } }, reply);
};
