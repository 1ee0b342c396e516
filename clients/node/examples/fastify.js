// A Fastify app whose @fastify/rate-limit decides through the module (or the Lua script on a
// server without it): 10 requests per minute per client, and 3 per minute on /login.
// Connects to REDIS_URL or redis://127.0.0.1:6379, listens on PORT (default 3000; 0: any
// free port) and prints its address. Try: for i in $(seq 12); do curl -si localhost:3000/ | head -1; done
const Fastify = require('fastify');
const rateLimit = require('@fastify/rate-limit');
const { fastifyStore } = require('distributed-rate-limiter/fastify');

async function main() {
  const app = Fastify();
  const Store = fastifyStore({ url: process.env.REDIS_URL || 'redis://127.0.0.1:6379' });
  await app.register(rateLimit, { max: 10, timeWindow: '1 minute', store: Store });
  app.addHook('onClose', () => Store.close());
  app.get('/', async () => ({ hello: 'world' }));
  app.post('/login', { config: { rateLimit: { max: 3, timeWindow: '1 minute' } } }, async () => ({ ok: true }));
  const address = await app.listen({ port: Number(process.env.PORT || 3000), host: '127.0.0.1' });
  console.log(`listening on ${address}`);
  const stop = () => app.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
